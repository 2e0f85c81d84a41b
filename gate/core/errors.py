"""The package's own exceptions and the exit codes they map to.

Every error a user can cause is a `GateError`; the CLI turns it into one line
on stderr and its `exit_code`. Anything else escaping the core is a bug and
exits with `ExitCode.INTERNAL`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    FAIL = 1
    USAGE = 2  # bad command line or bad input (paths, files, data, policy)
    INCONCLUSIVE = 3
    INTERNAL = 4  # a bug or an unexpected crash; never a verdict
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + the signal's number, as shells report it
    TERMINATED = 143  # SIGTERM


class GateError(Exception):
    """A problem the user can act on; the message is one line."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(GateError):
    """Something the user passed is missing or malformed."""


class CheckpointError(InputError):
    """A checkpoint cannot be read: missing, empty, corrupt, truncated."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that could only be loaded by unpickling (arbitrary code)."""


class IncompatibleModelsError(InputError):
    """Candidate and base cannot be compared (architecture, shapes, tokenizer)."""


class ModelNotFoundError(InputError):
    """A model reference names nothing that exists locally or can be fetched."""


class BackendUnavailableError(GateError):
    """A runtime (torch, MLX) is not installed or cannot run here."""


class DataError(InputError):
    """An evaluation data set or text is missing or unusable."""


class PolicyError(InputError):
    """A policy file is invalid."""


class MeasurementError(GateError):
    """A measurement could not be completed; the verdict can never be PASS."""

    exit_code = ExitCode.FAIL


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (a library's traceback-like text stays out of ours)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

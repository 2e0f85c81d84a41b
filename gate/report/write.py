"""Writing reports to the paths the user named, without harming any input.

A report path inside a checkpoint directory, or equal to an input file, is
refused before any work starts, and so is one that cannot be written (the
directory is probed with a temporary file), rather than after an hour of
measurements. Files are written to a temporary name and renamed, so an
interrupted run never leaves half a report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gate.core.errors import InputError


def chart_path(markdown: Path) -> Path:
    """Where the Markdown report's chart goes: beside it, same stem, .svg."""
    return Path(markdown).with_suffix(".svg")


def check_output_paths(outputs: dict[str, Path | None], protected: list[Path]) -> None:
    """Raise if an output would overwrite or land inside something the user gave us."""
    if outputs.get("--markdown"):
        outputs = {**outputs, "--markdown's chart": chart_path(outputs["--markdown"])}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        target = Path(path).expanduser().resolve()
        if target in seen:
            raise InputError(f"{option} and {seen[target]} name the same file {path}")
        seen[target] = option
        if target.is_dir():
            raise InputError(f"{option} {path} is a directory; give a file path")
        for item in protected:
            item = Path(item).resolve()
            if target == item or (item.is_dir() and item in target.parents):
                raise InputError(f"{option} {path} would write into an input ({item}); choose another path")
        if not target.parent.is_dir():
            raise InputError(f"{option} {path}: directory {target.parent} does not exist")
        if target.exists() and not target.is_file():
            raise InputError(f"{option} {path} exists and is not a regular file; give a file path")
        _check_writable(option, path, target.parent)


def check_records_dir(option: str, path: Path | None, protected: list[Path]) -> None:
    """A directory for per-item records: outside every input, and writable (created later, when written)."""
    if path is None:
        return
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise InputError(f"{option} {path} is a file; give a directory")
    for item in protected:
        item = Path(item).resolve()
        if target == item or item in target.parents:
            raise InputError(f"{option} {path} would write into an input ({item}); choose another directory")
    parent = target if target.is_dir() else target.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: directory {target.parent} does not exist")
    _check_writable(option, path, parent)


def _check_writable(option: str, path: Path, directory: Path) -> None:
    """Create and remove a temporary file: the only test that holds for every file system and user."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".gate-probe.", dir=directory)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write in {directory} ({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(probe)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name beside `path`, then rename: never half a file."""
    path = Path(path).expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

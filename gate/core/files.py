"""Files the gate writes (reports, per-item records, cache entries): guarded and atomic.

A directory for output is probed with a temporary file before any work
starts, rather than failing after an hour of measurements. Files are written
to a temporary name and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gate.core.errors import InputError


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
    check_writable(option, path, parent)


def check_writable(option: str, path: Path, directory: Path) -> None:
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

"""Writing reports to the paths the user named, without harming any input.

A report path inside a checkpoint directory, or equal to an input file, is
refused before any work starts. Files are written to a temporary name and
renamed, so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gate.errors import InputError


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


def write_text(path: Path, text: str) -> None:
    path = Path(path).expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Writing reports to the paths the user named, without harming any input.

A report path inside a checkpoint directory, or equal to an input file, is
refused before any work starts, and so is one that cannot be written (the
directory is probed with a temporary file), rather than after an hour of
measurements. Files are written atomically (`gate.core.files.write_text`), so
an interrupted run never leaves half a report.
"""

from __future__ import annotations

from pathlib import Path

from gate.core.errors import InputError
from gate.core.files import check_writable


def chart_path(markdown: Path) -> Path:
    """Where the Markdown report's chart goes: beside it, same stem, .svg."""
    return Path(markdown).with_suffix(".svg")


def claim_path(claimed: dict[Path, str], option: str, path: Path) -> Path:
    """`path` resolved, recorded as `option`'s; raise if another option already named the same file."""
    target = Path(path).expanduser().resolve()
    if target in claimed:
        raise InputError(f"{option} and {claimed[target]} name the same file {path}")
    claimed[target] = option
    return target


def check_output_paths(outputs: dict[str, Path | None], protected: list[Path]) -> None:
    """Raise if an output would overwrite or land inside something the user gave us."""
    if outputs.get("--markdown"):
        outputs = {**outputs, "--markdown's chart": chart_path(outputs["--markdown"])}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        target = claim_path(seen, option, path)
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
        check_writable(option, path, target.parent)

"""Directories built once into a cache: in a sibling temporary directory, stamped, then renamed into place.

A completion marker holding the build's key is written last, so a directory
whose marker matches was built completely from the same inputs; anything
else (half-written, stale, another key) is rebuilt. Two processes building
the same directory both finish: the second finds the first's and keeps it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from gate.core.progress import NULL_REPORTER, Reporter

MARKER_FILENAME = ".gate-build-complete.json"


def is_complete(directory: Path, key: dict[str, Any]) -> bool:
    try:
        return json.loads((directory / MARKER_FILENAME).read_text(encoding="utf-8")) == key
    except (OSError, ValueError):
        return False


def build_once(target: Path, key: dict[str, Any], build: Callable[[Path, Reporter], Any],
               reporter: Reporter = NULL_REPORTER) -> Path:
    """`target`, built by `build(staging_dir, reporter)` unless a complete build with `key` is already there."""
    if is_complete(target, key):
        return target
    return build_atomically(target, key, build, reporter)


def build_atomically(target: Path, key: dict[str, Any], build: Callable[[Path, Reporter], Any], reporter: Reporter) -> Path:
    """Build into a sibling temp dir, write the marker last, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        build(staging, reporter)
        (staging / MARKER_FILENAME).write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
        _replace_directory(staging, target, key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _replace_directory(staging: Path, target: Path, key: dict[str, Any]) -> None:
    if target.exists():
        if is_complete(target, key):  # another process finished first
            return
        # A stale or half-written build: move it aside before swapping in.
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
        os.replace(target, stale / target.name)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(staging, target)
    except OSError:
        if not is_complete(target, key):
            raise

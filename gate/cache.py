"""A cache of base-model runs, so gating the next candidate evaluates only the candidate.

An entry is keyed by a hash of the base's weight files, of what was asked
(the step's plan: the exact token windows, the BBQ items and mode), of the
runtime settings and of gate's version. Entries are JSON, read back into the
run dataclasses by their type hints: nothing is unpickled. Only runs without
an ERROR finding are stored, so a broken run is always measured afresh.
Latency is never cached: its ratio is only fair when both models are timed
side by side.

Weight files are hashed once: their digests are remembered by path, size and
modification time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Union

from gate import __version__
from gate.document import to_jsonable
from gate.outputs import write_text

HASH_CHUNK = 16 << 20


def cache_root() -> Path:
    return Path(os.environ.get("GATE_CACHE_DIR") or Path.home() / ".cache" / "gate")


class BaseRunCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = (root or cache_root()) / "base-runs"
        self.enabled = enabled

    def key(self, *parts: str) -> str:
        return hashlib.sha256("\x00".join((__version__,) + parts).encode()).hexdigest()

    def get(self, key: str, cls: type) -> Any | None:
        if not self.enabled:
            return None
        path = self.root / f"{key}.json"
        try:
            return from_jsonable(cls, json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)  # written by another version of a run type: measure afresh
            return None

    def put(self, key: str, run: Any) -> None:
        if not self.enabled:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(self.root / f"{key}.json", json.dumps(to_jsonable(run)))

    def clear(self) -> int:
        """Remove every entry (and remembered digests); returns how many entries there were."""
        count = len(list(self.root.glob("*.json"))) if self.root.is_dir() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root.parent / "digests.json").unlink(missing_ok=True)
        return count

    def size(self) -> tuple[int, int]:
        files = list(self.root.glob("*.json")) if self.root.is_dir() else []
        return len(files), sum(f.stat().st_size for f in files)


def weights_digest(files: list[Path], root: Path | None = None) -> str:
    """sha256 over the weight files' contents, each file hashed only once per (path, size, mtime)."""
    memo_path = (root or cache_root()) / "digests.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        memo = {}
    total, changed = hashlib.sha256(), False
    for file in files:
        stat = file.stat()
        memo_key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if memo_key not in memo:
            memo[memo_key] = _file_digest(file)
            changed = True
        total.update(memo[memo_key].encode())
    if changed:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(memo_path, json.dumps(memo))
    return total.hexdigest()


def _file_digest(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` from `to_jsonable` output (dataclasses, tuples, optionals, enums)."""
    if data is None:
        return None
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: from_jsonable(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.init})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return from_jsonable(options[0], data)
        for option in options:
            try:
                return from_jsonable(option, data)
            except (TypeError, ValueError, KeyError):
                continue
        raise TypeError(f"{data!r} matches none of {tp}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], x) for x in data)
        return tuple(from_jsonable(a, x) for a, x in zip(args, data)) if args else tuple(data)
    if origin is list:
        return [from_jsonable(args[0], x) for x in data] if args else list(data)
    if origin is dict:
        return {k: from_jsonable(args[1], v) for k, v in data.items()} if args else dict(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is float:
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"expected {tp.__name__}, got {data!r}")
        return data
    return data  # Any, dict without parameters, ...

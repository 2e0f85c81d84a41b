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

Nothing read back is trusted: each entry carries the key it answers and a
sha256 of its content, and an entry that fails either check, or does not
parse, is dropped with a one-line warning and measured afresh. A cache
directory that cannot be used costs the cache, never the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import shutil
from pathlib import Path
from typing import Any, Iterator

from gate import __version__
from gate.core.errors import GateError, InputError
from gate.core.files import write_text
from gate.core.safejson import load_json
from gate.core.serialize import from_jsonable, to_jsonable

HASH_CHUNK = 16 << 20
ENTRY_FORMAT = 2  # {"format", "key", "sha256", "run"}; format 1 held the bare run
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Warnings go to stderr as one line each (logging's last-resort handler prints the bare message).
log = logging.getLogger("gate.run.cache")


_root_override: Path | None = None  # set by using_cache_root, for one sweep


def cache_root() -> Path:
    if _root_override is not None:
        return _root_override
    return Path(os.environ.get("GATE_CACHE_DIR") or Path.home() / ".cache" / "gate")


@contextlib.contextmanager
def using_cache_root(root: Path) -> Iterator[Path]:
    """Base runs are cached under `root` inside the block (a sweep under --no-cache keeps its base in a temporary
    directory); GATE_CACHE_DIR is left alone, so the demo models are still found where they were built."""
    global _root_override
    previous, _root_override = _root_override, Path(root)
    try:
        yield Path(root)
    finally:
        _root_override = previous


def cache_dir_problem(root: Path | None = None) -> str | None:
    """Why the base-run cache cannot be used here (not a directory, not writable), or None."""
    directory = (root or cache_root()) / "base-runs"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".gate-probe.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"the cache directory {directory} is not usable ({exc.strerror or type(exc).__name__})"
    return None


def _content_digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, allow_nan=False).encode()).hexdigest()


class BaseRunCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = (root or cache_root()) / "base-runs"
        self.enabled = enabled

    def key(self, *parts: str) -> str:
        return hashlib.sha256("\x00".join((__version__,) + parts).encode()).hexdigest()

    def get(self, key: str, cls: type) -> Any | None:
        """The run stored under `key`, or None: absent, or dropped (with a warning) when it fails a check."""
        if not self.enabled:
            return None
        path = self.root / f"{key}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._drop(path, f"cannot be read ({exc.strerror or type(exc).__name__})")
        try:
            entry = load_json(raw, str(path))
        except GateError:
            return self._drop(path, "is not valid JSON")
        problem = entry_problem(entry, key)
        if problem:
            return self._drop(path, problem)
        try:
            return from_jsonable(cls, entry["run"])
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return self._drop(path, "does not hold a run of the expected type")  # another version of a run type

    def read_entry(self, key: str) -> dict | None:
        """The intact entry stored under `key`, as stored, or None (absent or failing a check)."""
        path = self.root / f"{key}.json"
        try:
            entry = load_json(path.read_bytes(), str(path))
        except (OSError, GateError):
            return None
        return None if entry_problem(entry, key) else entry

    def _drop(self, path: Path, why: str) -> None:
        log.warning(f"gate: warning: cache entry {path.name} {why}; ignored, the base is measured afresh")
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # unreadable and undeletable: it is ignored all the same
        return None

    def put(self, key: str, run: Any) -> None:
        if not self.enabled:
            return
        data = to_jsonable(run)
        self.put_entry({"format": ENTRY_FORMAT, "key": key, "sha256": _content_digest(data), "run": data})

    def put_entry(self, entry: dict) -> None:
        """Store an entry that `entry_problem` has passed (made by `put`, or imported)."""
        if not self.enabled:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_text(self.root / f"{entry['key']}.json", json.dumps(entry, allow_nan=False))
        except OSError as exc:  # a full disk or a read-only cache costs the cache, not the run
            log.warning(f"gate: warning: cannot write to the cache in {self.root} "
                        f"({exc.strerror or type(exc).__name__}); continuing without it")
            self.enabled = False

    def clear(self) -> int:
        """Remove every entry (and remembered digests); returns how many entries there were."""
        count = len(list(self.root.glob("*.json"))) if self.root.is_dir() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            (self.root.parent / "digests.json").unlink(missing_ok=True)
        except OSError as exc:
            raise InputError(f"cannot clear the cache in {self.root.parent}: {exc.strerror or type(exc).__name__}") from None
        return count

    def size(self) -> tuple[int, int]:
        files = list(self.root.glob("*.json")) if self.root.is_dir() else []
        return len(files), sum(f.stat().st_size for f in files)


def is_cache_key(key: object) -> bool:
    """Whether `key` has the form `BaseRunCache.key` gives (it names a file: nothing else may)."""
    return isinstance(key, str) and _SHA256.fullmatch(key) is not None


def entry_problem(entry: Any, key: str | None = None) -> str | None:
    """Why a cache entry cannot be trusted (wrong format, key or checksum), or None; `key`: the one it must answer."""
    if not isinstance(entry, dict) or entry.get("format") != ENTRY_FORMAT or not {"key", "sha256", "run"} <= entry.keys():
        return "is not in this version's format"
    if not isinstance(entry["key"], str):
        return "has a malformed key"
    if key is not None and entry["key"] != key:
        return "answers another question (its key does not match its name)"
    try:
        intact = entry["sha256"] == _content_digest(entry["run"])
    except (TypeError, ValueError):
        intact = False
    return None if intact else "does not match its checksum (edited or damaged)"


def weights_digest(files: list[Path], root: Path | None = None) -> str:
    """sha256 over the weight files' contents, each file hashed only once per (path, size, mtime)."""
    memo_path = (root or cache_root()) / "digests.json"
    memo = _read_memo(memo_path)
    total, changed = hashlib.sha256(), False
    for file in files:
        stat = file.stat()
        memo_key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if memo_key not in memo:
            memo[memo_key] = _file_digest(file)
            changed = True
        total.update(memo[memo_key].encode())
    if changed:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            write_text(memo_path, json.dumps(memo))
        except OSError:
            pass  # the digests are computed again next time: slower, never wrong
    return total.hexdigest()


def _read_memo(memo_path: Path) -> dict[str, str]:
    """Remembered file digests; a malformed file is ignored with a warning (and rewritten)."""
    try:
        raw = memo_path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError:
        return {}
    try:
        memo = load_json(raw, str(memo_path))
    except GateError:
        memo = None
    if not isinstance(memo, dict) or not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in memo.values()):
        log.warning(f"gate: warning: {memo_path} is malformed; ignored, weight files are hashed afresh")
        return {}
    return memo


def _file_digest(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

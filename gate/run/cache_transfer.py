"""Moving cached base runs between machines: `gate cache export` and `gate cache import`.

A CI matrix measures the base once in one job, exports its runs as an
artifact, and every candidate job imports them before `gate check`, so each
candidate's report shows the base as cached. A bundle is one gzip-compressed
JSON file: the entries exactly as the cache stores them (each with the key it
answers and the checksum of its content) and a checksum over all of them.

An import trusts nothing it reads. It checks the whole bundle before it writes
anything, and it never replaces an entry that holds something else under the
same key unless asked to (`--replace`): two machines that measured one base
differently should be noticed, not settled silently.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from gate import __version__
from gate.core.errors import GateError, InputError
from gate.core.safejson import load_json
from gate.core.files import write_bytes
from gate.run.cache import BaseRunCache, cache_dir_problem, entry_problem, is_cache_key

BUNDLE_FORMAT = "gate.cache-bundle/v1"
# A bundle larger than this once decompressed is refused: a base's runs take a few MB.
MAX_BUNDLE_BYTES = 1 << 30
log = logging.getLogger("gate.run.cache")


@dataclass(frozen=True)
class ImportSummary:
    added: int
    unchanged: int  # already held, identical
    replaced: int
    bundle_version: str  # the gate version that wrote the bundle


def export_runs(cache: BaseRunCache, path: Path) -> int:
    """Write every intact cached run to `path`; returns how many. Damaged entries are left out, with a warning."""
    entries = []
    files = sorted(cache.root.glob("*.json")) if cache.root.is_dir() else []
    for file in files:
        try:
            entry = load_json(file.read_bytes(), str(file))
        except (OSError, GateError):
            entry = None
        problem = "cannot be read" if entry is None else entry_problem(entry, key=file.stem)
        if problem:
            log.warning(f"gate: warning: cache entry {file.name} {problem}; left out of the export")
            continue
        entries.append(entry)
    bundle = {"format": BUNDLE_FORMAT, "gate_version": __version__, "entries": entries,
              "sha256": _entries_digest(entries)}
    write_bytes(path, gzip.compress(json.dumps(bundle, allow_nan=False).encode(), mtime=0))
    return len(entries)


def import_runs(cache: BaseRunCache, path: Path, replace: bool = False) -> ImportSummary:
    """Add the bundle's runs to the cache; raise InputError, writing nothing, if any of it is wrong."""
    problem = cache_dir_problem(cache.root.parent)
    if problem:
        raise InputError(f"cannot import: {problem}")
    bundle = _read_bundle(path)
    entries = bundle["entries"]
    for index, entry in enumerate(entries):
        problem = entry_problem(entry) or (None if is_cache_key(entry["key"]) else "has a malformed key")
        if problem:
            raise InputError(f"{path}: entry {index + 1} {problem}; nothing imported")
    held = {entry["key"]: cache.read_entry(entry["key"]) for entry in entries}
    conflicts = [e for e in entries if held[e["key"]] is not None and held[e["key"]]["sha256"] != e["sha256"]]
    if conflicts and not replace:
        raise InputError(f"{path}: {len(conflicts)} of its runs differ from the cached runs under the same keys "
                         f"(the same base, measured differently); nothing imported; --replace takes the bundle's")
    new = [e for e in entries if held[e["key"]] is None or held[e["key"]]["sha256"] != e["sha256"]]
    for entry in new:
        cache.put_entry(entry)
    return ImportSummary(added=len(new) - len(conflicts), unchanged=len(entries) - len(new),
                         replaced=len(conflicts), bundle_version=bundle["gate_version"])


def _read_bundle(path: Path) -> dict:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory; give the bundle file that `gate cache export` wrote") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path} is not a gzip bundle from `gate cache export` "
                         f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise InputError(f"{path} holds more than {MAX_BUNDLE_BYTES >> 20} MiB once decompressed; refused")
    bundle = load_json(raw, str(path))
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT \
            or not isinstance(bundle.get("entries"), list) or not isinstance(bundle.get("gate_version"), str):
        raise InputError(f"{path} is not a bundle in format {BUNDLE_FORMAT}")
    if bundle.get("sha256") != _entries_digest(bundle["entries"]):
        raise InputError(f"{path} does not match its checksum (edited or damaged); nothing imported")
    return bundle


def _entries_digest(entries: list) -> str:
    try:
        return hashlib.sha256(json.dumps(entries, sort_keys=True, allow_nan=False).encode()).hexdigest()
    except (TypeError, ValueError):
        return ""

"""The one check of a checkpoint directory, shared by the audit (gate/inputs) and the runtimes.

A checkpoint is a directory in Hugging Face layout: config.json plus
`model.safetensors`, or shards listed in `model.safetensors.index.json` (the
directories mlx-lm writes have the same layout). Pickle weights (`*.bin`,
`*.pt`, `*.pth`, `*.ckpt`) are refused: loading them runs arbitrary code.
Every file read must lie inside the directory, symlinks followed
(docs/security.md). Messages name files, never echo bytes. Checked before
any runtime loads, too: mlx-lm takes a missing local path for a hub name and
downloads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gate.core.errors import CheckpointError, UnsafeCheckpointError
from gate.core.safejson import load_json

INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# A name from a file shown in an error message is cut to this many characters.
NAME_SHOWN = 80


@dataclass(frozen=True)
class CheckpointDir:
    """A checkpoint directory whose layout has been checked (weight headers not yet read)."""

    path: Path
    config: dict
    weight_files: tuple[Path, ...]


def check_checkpoint_dir(path: Path) -> CheckpointDir:
    """Refuse, with one line, a directory that neither the audit nor a runtime could read safely."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such file or directory: {path}")
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise _pickle_refusal(path, [path])
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds config.json and the weights")
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise CheckpointError(f"cannot list {path}: {exc.strerror or type(exc).__name__}") from None
    for entry in entries:  # tokenizer files and templates too: runtimes read them later
        if entry.is_symlink():
            inside_checkpoint(path, entry)
    config = _read_config(path)
    return CheckpointDir(path, config, tuple(inside_checkpoint(path, f) for f in _weight_files(path)))


def inside_checkpoint(root: Path, file: Path) -> Path:
    """`file`, refused unless it (symlinks followed) lies inside the checkpoint directory `root`.

    A shard index entry such as `../x` or `/etc/x`, or a symlinked weight file,
    could otherwise make gate read, and report on, a file the user never
    passed. A Hugging Face cache snapshot is the one layout whose files are
    symlinks by design: into the `blobs` folder of the same repository.
    """
    try:
        root, target = Path(root).resolve(), Path(file).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        raise CheckpointError(f"{Path(file).name} in {root} cannot be resolved (a symlink loop?)") from None
    allowed = [root]
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith(("models--", "datasets--")):
        allowed.append(root.parent.parent / "blobs")
    if not any(target.is_relative_to(a) for a in allowed):
        raise UnsafeCheckpointError(
            f"{Path(file).name} in {root} resolves to a file outside the checkpoint directory; gate reads only "
            "files inside it (copy the file in instead of linking to it)"
        )
    return Path(file)


def _read_config(path: Path) -> dict:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no config.json in {path}: not a Hugging Face or mlx-lm checkpoint directory")
    inside_checkpoint(path, config_file)
    return read_json_object(config_file)


def _weight_files(path: Path) -> list[Path]:
    index = path / INDEX_FILE
    if index.is_file():
        inside_checkpoint(path, index)
        return _shards_from_index(index)
    files = sorted(p for p in path.glob("*.safetensors") if p.is_file())
    if files:
        return files
    pickles = sorted(p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise _pickle_refusal(path, pickles)
    raise CheckpointError(f"no weight files (*.safetensors) in {path}")


def _shards_from_index(index: Path) -> list[Path]:
    try:
        raw = index.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {index}: {exc.strerror}") from None
    document = load_json(raw, str(index), CheckpointError)
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index} is not a valid safetensors index: it needs a \"weight_map\" object "
                              "from tensor names to shard file names")
    shard_names = sorted(set(weight_map.values()))
    for name in shard_names:
        # A plain relative name: no absolute path, no "..", nothing a symlink check alone would have to catch.
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\\" in name or "\0" in name:
            raise UnsafeCheckpointError(f"{index} names a shard outside the checkpoint directory; "
                                        "shard names must be file names inside it")
    shards = [index.parent / name for name in shard_names]
    missing = [shown_name(s.name) for s in shards if not s.is_file()]
    if missing:
        raise CheckpointError(f"shard {missing[0]} named in {index.name} is missing from {index.parent}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return shards


def _pickle_refusal(path: Path, pickles: list[Path]) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path} holds only pickle weights ({pickles[0].name}); loading them would run arbitrary code, "
        "so gate refuses: convert the checkpoint to safetensors first"
    )

def read_json_object(file: Path) -> dict:
    """A checkpoint's JSON file (generation_config.json, say) as a dict, or one CheckpointError line."""
    try:
        raw = Path(file).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {file}: {exc.strerror or type(exc).__name__}") from None
    value = load_json(raw, str(file), CheckpointError)
    if not isinstance(value, dict):
        raise CheckpointError(f"{file} does not hold a JSON object")
    return value


def shown_name(name: str) -> str:
    """A name from a file, safe in a one-line message: control characters escaped, length capped."""
    text = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= NAME_SHOWN else text[:NAME_SHOWN] + "…"


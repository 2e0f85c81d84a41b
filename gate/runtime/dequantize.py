"""Dense copies of quantized checkpoints, built once and cached, for runtimes that cannot read the packed form.

torch cannot load mlx-lm's packed weights, and no runtime gate uses reads
GGUF directly. Both are dequantized into an ordinary Hugging Face checkpoint:
an mlx-lm checkpoint by MLX's own `mx.dequantize`, a GGUF file by
transformers' GGUF loader (which dequantizes with the `gguf` package).
Dequantized weights are stored in float32, where scale·q + bias is exact, so
the copy computes with exactly the quantized values; tensors that were never
quantized keep their dtype. Copies live under `<cache>/dequantized/<key>`,
keyed by a digest of the source's files and this module's version, built in
a temporary directory and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

from gate.core.built_dir import build_once
from gate.core.errors import BackendUnavailableError, CheckpointError, InputError
from gate.core.progress import NULL_REPORTER, Reporter
from gate.core.tokenizer import Tokenizer

# Bump when a change here changes what lands on disk, so old copies are rebuilt rather than trusted.
DEQUANTIZER_VERSION = 1
_QUANTIZATION_KEYS = ("quantization", "quantization_config")
_SIDE = (".scales", ".biases")


def dense_copy_of_mlx(checkpoint: Any, cache_root: Path, digest: str, reporter: Reporter = NULL_REPORTER) -> Path:
    """The cached dense copy of an mlx-lm quantized checkpoint (a `Checkpoint`), built on first use.

    `digest` identifies the source (its weight, config and tokenizer files); copies live under `cache_root`.
    """
    key = {"version": DEQUANTIZER_VERSION, "format": "mlx", "digest": digest}
    return build_once(_target(key, cache_root), key,
                      lambda out, rep: write_dense_from_mlx(checkpoint, out, rep), reporter)


def dense_copy_of_gguf(gguf_file: Path, cache_root: Path, digest: str, reporter: Reporter = NULL_REPORTER) -> Path:
    """The cached dense copy of a GGUF file (`digest`: of the file), built on first use."""
    key = {"version": DEQUANTIZER_VERSION, "format": "gguf", "digest": digest}
    return build_once(_target(key, cache_root), key,
                      lambda out, rep: write_dense_from_gguf(Path(gguf_file), out, rep), reporter)


def _target(key: dict, cache_root: Path) -> Path:
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return dense_copies_root(cache_root) / name


def dense_copies_root(cache_root: Path) -> Path:
    return Path(cache_root) / "dequantized"


def _dense_copies(cache_root: Path) -> list[Path]:
    root = dense_copies_root(cache_root)
    return [path for path in root.iterdir() if path.is_dir()] if root.is_dir() else []


def dense_copies_size(cache_root: Path) -> tuple[int, int]:
    """How many dense copies the cache holds, and their bytes."""
    copies = _dense_copies(cache_root)
    return len(copies), sum(f.stat().st_size for copy in copies for f in copy.rglob("*") if f.is_file())


def clear_dense_copies(cache_root: Path) -> int:
    """Remove every dense copy (each is rebuilt on its next use); returns how many there were."""
    count = len(_dense_copies(cache_root))
    root = dense_copies_root(cache_root)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        raise InputError(f"cannot clear the dense copies in {root}: permission denied or in use")
    return count


def source_files(checkpoint_dir: Path, weight_files: list[Path]) -> list[Path]:
    """What defines a dense copy: the source's weights, config, tokenizer and chat template."""
    return list(weight_files) + _side_files(checkpoint_dir)


def _side_files(path: Path) -> list[Path]:
    """Everything but the weights that defines the copy: config, tokenizer, chat template."""
    return sorted(p for p in Path(path).iterdir() if p.is_file() and p.suffix in (".json", ".jinja", ".model", ".txt"))


# --- mlx-lm -------------------------------------------------------------------


def write_dense_from_mlx(checkpoint: Any, out_dir: Path, reporter: Reporter = NULL_REPORTER) -> None:
    try:
        import mlx.core as mx
    except ImportError:
        raise BackendUnavailableError(
            f"{checkpoint.path.name} is MLX-quantized; torch runs it only once MLX has dequantized it, and mlx is not "
            "installed: pip install 'gate-llm[mlx-cpu]' (or 'gate-llm[mlx]' on a Mac)") from None
    settings = checkpoint.quantization or {}
    weight_map: dict[str, str] = {}
    with reporter.task(f"Dequantizing {checkpoint.path.name} with MLX (once; cached)", total=len(checkpoint.weight_files)) as task:
        for file in checkpoint.weight_files:
            arrays = mx.load(str(file))
            dense = _dequantized_arrays(mx, arrays, settings)
            mx.save_safetensors(str(out_dir / file.name), dense, metadata={"format": "pt"})
            weight_map.update({name: file.name for name in dense})
            task.advance()
    _copy_side_files(checkpoint.path, out_dir)
    if len(checkpoint.weight_files) > 1:
        index = {"metadata": {}, "weight_map": dict(sorted(weight_map.items()))}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _dequantized_arrays(mx: Any, arrays: dict[str, Any], settings: dict) -> dict[str, Any]:
    dense = {}
    for name, array in arrays.items():
        if name.endswith(_SIDE):
            continue
        dense[name] = dequantize_packed(mx, arrays, name, settings) if _packed(arrays, name) else array
    return dense


def _packed(arrays: dict[str, Any], name: str) -> bool:
    return f"{name.removesuffix('.weight')}.scales" in arrays


def dequantize_packed(mx: Any, arrays: dict[str, Any], name: str, settings: dict) -> Any:
    """One packed mlx-lm weight as float32, exactly scale·q + bias (the layer's own bits and group size)."""
    stem = name.removesuffix(".weight")
    layer = settings.get(stem) if isinstance(settings.get(stem), dict) else settings
    scales, biases = arrays[f"{stem}.scales"], arrays.get(f"{stem}.biases")
    if mx.issubdtype(scales.dtype, mx.floating):  # exact products: scale·q + bias in float32
        scales = scales.astype(mx.float32)
        biases = biases.astype(mx.float32) if biases is not None else None
    try:
        dense = mx.dequantize(arrays[name], scales, biases, group_size=layer.get("group_size"),
                              bits=layer.get("bits"), mode=layer.get("mode", "affine")).astype(mx.float32)
        mx.eval(dense)
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"MLX cannot dequantize {name[:80]}: {str(error).splitlines()[0][:160]}") from None
    return dense


def _copy_side_files(source: Path, out_dir: Path) -> None:
    for item in Path(source).iterdir():
        if not item.is_file() or item.suffix == ".safetensors" or item.name == "model.safetensors.index.json":
            continue
        if item.name == "config.json":
            config = json.loads(item.read_text(encoding="utf-8"))
            for key in _QUANTIZATION_KEYS:
                config.pop(key, None)
            (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        elif item.suffix in (".json", ".jinja", ".model", ".txt", ".tiktoken"):
            shutil.copy2(item, out_dir / item.name)


# --- GGUF -----------------------------------------------------------------------


def write_dense_from_gguf(gguf: Path, out_dir: Path, reporter: Reporter = NULL_REPORTER,
                          dtype: str = "float32") -> Tokenizer:
    """Dequantize a GGUF file with transformers into a Hugging Face checkpoint in `dtype`; returns the tokenizer."""
    torch, transformers = _torch_stack()
    from transformers.initialization import no_init_weights
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    with reporter.task(f"Dequantizing {gguf.name} (GGUF; once, cached)", total=3) as task, quiet_transformers():
        try:
            config = transformers.AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            task.advance()
            # Not `from_pretrained(gguf_file=...)`: it demands accelerate and leaves a GGUF quantizer that
            # refuses to save. The weights are dense once dequantized, so load them into a plain model.
            with no_init_weights():
                model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar ignores transformers' switch
                tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
        except ImportError as error:
            raise BackendUnavailableError(f"reading {gguf.name} needs the gguf package ({error}): pip install gguf") from None
        except (ValueError, KeyError, TypeError, NotImplementedError, OSError) as error:
            raise CheckpointError(f"transformers cannot load {gguf.name} ({_first_line(error)}); "
                                  "--metrics sparsity,size audits it without running it") from None
        task.advance()
        load_dense_weights(model, tensors, gguf.name)
        model.to(getattr(torch, dtype)).save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        add_top_level_rope_theta(out_dir / "config.json")
        task.advance()
    return tokenizer


def load_dense_weights(model: Any, tensors: dict[str, Any], source: str) -> None:
    result = model.load_state_dict(tensors, strict=False)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    allowed_missing = {"lm_head.weight"} if tied else set()
    if result.unexpected_keys or set(result.missing_keys) - allowed_missing:
        raise CheckpointError(
            f"{source} does not match its architecture: missing {sorted(result.missing_keys)[:3]}, "
            f"unexpected {sorted(result.unexpected_keys)[:3]}")
    if tied:
        # The LM head was never allocated from the file: point it at the embedding.
        model.tie_weights()
        if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
            raise CheckpointError(f"the LM head of {source} could not be tied to its embedding")


def add_top_level_rope_theta(config_path: Path) -> None:
    """Save the config with the top-level RoPE keys mlx-lm reads, so any MLX loader gets the same model."""
    from gate.runtime.common import rope_config_fix

    config = json.loads(config_path.read_text(encoding="utf-8"))
    fix = rope_config_fix(config)
    if fix:
        config_path.write_text(json.dumps({**config, **fix}, indent=2) + "\n", encoding="utf-8")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _torch_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as error:
        raise BackendUnavailableError(f"dequantizing a GGUF file needs torch and transformers ({error.name} missing): "
                                      "pip install 'gate-llm[torch]'") from None
    return torch, transformers


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars: progress goes through the reporter only."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()

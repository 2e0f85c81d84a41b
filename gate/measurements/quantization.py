"""What a checkpoint's quantization is: bits per weight, group size, what stayed in 16 bits, the bytes it saved.

Read from headers only (safetensors headers for mlx-lm checkpoints, the GGUF
tensor table for GGUF files): no weight is loaded. Bits per weight count
everything a quantized weight costs on disk, its scales and biases included,
so an mlx-lm 4-bit weight with group size 64 costs 4.5 bits. "16-bit
equivalent" is what the same tensors take at 2 bytes per element: the size a
bf16 checkpoint of the same model has, against which the saving is stated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gate.measurements.scan import classify

if TYPE_CHECKING:
    from gate.inputs.checkpoint import Checkpoint
    from gate.inputs.gguf import GgufCheckpoint

# safetensors float dtypes whose tensors count as "not quantized".
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
_GGUF_FLOAT_TYPES = {"F64", "F32", "F16", "BF16"}
_SIDE = (".scales", ".biases")


@dataclass(frozen=True)
class KindBits:
    """One module kind (q_proj, ..., embed_tokens, lm_head, norm, other)."""

    kind: str
    tensors: int
    weights: int
    bits_per_weight: float
    types: tuple[str, ...]  # storage types seen: "4-bit", "Q4_1", "BF16", ...


@dataclass(frozen=True)
class Quantization:
    format: str  # "mlx" (mlx-lm's packed affine/fp formats) or "gguf"
    scheme: str  # "affine 4-bit, group 64"; "Q4_1 (210 tensors), Q8_0 (1)"
    bits_per_weight: float  # all weight tensors together: bytes * 8 / elements
    quantized_bits_per_weight: float  # the quantized tensors alone
    group_size: int | None  # elements sharing one scale (GGUF: the block size of the main type)
    quantized_tensors: int
    unquantized_tensors: int  # stored as floats (16 or 32 bits)
    unquantized_kinds: tuple[str, ...]  # their module kinds, e.g. ("norm",)
    unquantized_types: tuple[str, ...]  # their storage types, e.g. ("F32",)
    tensor_bytes: int  # all tensors as stored
    bytes_16bit: int  # the same tensors at 2 bytes per element
    by_kind: tuple[KindBits, ...]

    @property
    def size_fraction(self) -> float:
        """Stored size over the 16-bit size: what the quantization bought."""
        return self.tensor_bytes / self.bytes_16bit if self.bytes_16bit else 1.0


def module_kind(name: str) -> str:
    where = classify(name)
    if where:
        return where[1]
    if "embed" in name or name.startswith("token_embd"):
        return "embed_tokens"
    if name.startswith(("lm_head", "output.")):
        return "lm_head"
    return "norm" if "norm" in name else "other"


@dataclass
class _Entry:
    kind: str
    type: str
    weights: int
    nbytes: int
    quantized: bool


def describe_quantization(checkpoint: Checkpoint | GgufCheckpoint) -> Quantization | None:
    """How a checkpoint (safetensors `Checkpoint` or `GgufCheckpoint`) is quantized, or None if it is not."""
    from gate.inputs.gguf import GgufCheckpoint

    return describe_gguf(checkpoint) if isinstance(checkpoint, GgufCheckpoint) else describe_mlx(checkpoint)


def describe_mlx(checkpoint: Checkpoint) -> Quantization | None:
    """An mlx-lm quantized checkpoint (config "quantization", packed uint32 weights with .scales), else None."""
    settings = checkpoint.quantization
    if not settings:
        return None
    tensors = checkpoint.tensors
    entries = []
    for name, info in tensors.items():
        if name.endswith(_SIDE):
            continue
        stem = name.removesuffix(".weight")
        scales = tensors.get(f"{stem}.scales")
        if scales is None or info.dtype in _FLOAT_DTYPES:
            entries.append(_Entry(module_kind(name), info.dtype, info.numel, info.nbytes, False))
            continue
        group = _group_size(settings, stem)
        elements = scales.numel * group
        side = scales.nbytes + (tensors[f"{stem}.biases"].nbytes if f"{stem}.biases" in tensors else 0)
        bits = round(info.nbytes * 8 / elements) if elements else 0
        entries.append(_Entry(module_kind(name), f"{bits}-bit", elements, info.nbytes + side, True))
    if not any(e.quantized for e in entries):
        return None
    mode = settings.get("mode", "affine") if isinstance(settings.get("mode", "affine"), str) else "affine"
    bits = settings.get("bits")
    scheme = f"{mode} {bits}-bit" if isinstance(bits, int) else mode
    group = settings.get("group_size") if isinstance(settings.get("group_size"), int) else None
    return _summarize("mlx", scheme, group, entries)


def describe_gguf(gguf: GgufCheckpoint) -> Quantization:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    entries = [_Entry(module_kind(t.name), t.type_name, t.numel, t.nbytes, t.type_name not in _GGUF_FLOAT_TYPES)
               for t in gguf.tensors.values()]
    counts: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.quantized:
            counts[e.type] += 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    scheme = ", ".join(f"{kind} ({n} tensor{'s' if n != 1 else ''})" for kind, n in ranked) or "unquantized"
    group = GGML_QUANT_SIZES[GGMLQuantizationType[ranked[0][0]]][0] if ranked else None
    return _summarize("gguf", scheme, group, entries)


def _group_size(settings: dict, stem: str) -> int:
    # mlx-lm writes per-layer overrides as {"model.layers.0.mlp.down_proj": {"group_size": ..., "bits": ...}}.
    override = settings.get(stem)
    value = override.get("group_size") if isinstance(override, dict) else settings.get("group_size")
    return value if isinstance(value, int) and value > 0 else 64


def _summarize(fmt: str, scheme: str, group: int | None, entries: list[_Entry]) -> Quantization:
    quantized = [e for e in entries if e.quantized]
    plain = [e for e in entries if not e.quantized]
    return Quantization(
        format=fmt, scheme=scheme,
        bits_per_weight=_bits(entries), quantized_bits_per_weight=_bits(quantized), group_size=group,
        quantized_tensors=len(quantized), unquantized_tensors=len(plain),
        unquantized_kinds=tuple(sorted({e.kind for e in plain})), unquantized_types=tuple(sorted({e.type for e in plain})),
        tensor_bytes=sum(e.nbytes for e in entries), bytes_16bit=sum(2 * e.weights for e in entries),
        by_kind=_by_kind(entries),
    )


def _bits(entries: list[_Entry]) -> float:
    weights = sum(e.weights for e in entries)
    return round(8 * sum(e.nbytes for e in entries) / weights, 3) if weights else 0.0


def _by_kind(entries: list[_Entry]) -> tuple[KindBits, ...]:
    groups: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        groups[e.kind].append(e)
    return tuple(
        KindBits(kind=kind, tensors=len(group), weights=sum(e.weights for e in group), bits_per_weight=_bits(group),
                 types=tuple(sorted({e.type for e in group})))
        for kind, group in sorted(groups.items())
    )

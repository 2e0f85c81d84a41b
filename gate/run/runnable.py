"""What each runtime loads for each model, and why: the report states it.

A plain Hugging Face checkpoint is loaded as it is. An mlx-lm quantized one
runs as stored on MLX; torch cannot read its packed weights, so for torch
(`--backend auto` on Linux, where MLX has only a slow CPU backend, or
`--backend torch`) MLX dequantizes it once into a cached dense copy whose
weights are exactly the quantized values. A GGUF file is dequantized once by
transformers' GGUF loader into a cached dense copy, which either runtime
loads; its tokenizer (from the GGUF metadata) is checked against the other
model's. Copies are made before any model step runs, so a combination that
cannot run stops with one line before anything is measured.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.core.errors import InputError
from gate.core.progress import NULL_REPORTER, Reporter
from gate.core.result import Finding, Severity
from gate.run.cache import cache_root, weights_digest

if TYPE_CHECKING:
    from gate.inputs.checkpoint import Checkpoint

_ROLES = ("base", "candidate")


@dataclass(frozen=True)
class Runnable:
    path: Path  # the Hugging Face directory the runtime loads
    finding: Finding | None = None  # which runtime measured what, and why; None for a plain checkpoint


class RunnableInputs:
    """The directory each runtime loads for each model (built once per run), and the findings that say why."""

    def __init__(self, paths: dict[str, Path], options: Any, reporter: Reporter = NULL_REPORTER):
        self._paths, self._options, self._reporter = paths, options, reporter
        self._memo: dict[tuple[str, str], Runnable] = {}
        self._kinds = {role: _input_kind(path) for role, path in paths.items()}

    def get(self, role: str, backend: str) -> Runnable:
        if (role, backend) not in self._memo:
            self._memo[role, backend] = self._prepare(role, backend)
        return self._memo[role, backend]

    def path(self, role: str, backend: str) -> Path:
        return self.get(role, backend).path

    def tokenizer_path(self, role: str) -> Path:
        """Where the model's tokenizer files are: its own directory, or a GGUF's dense copy."""
        return self.path(role, "torch") if self._kinds[role][0] == "gguf" else self._paths[role]

    def findings(self, backend: str) -> tuple[Finding, ...]:
        found = [self.get(role, backend).finding for role in _ROLES if role in self._paths]
        found += self._tokenizer_findings()
        return tuple(f for f in found if f is not None)

    def _prepare(self, role: str, backend: str) -> Runnable:
        kind, source = self._kinds[role]
        if kind == "gguf":
            from gate.runtime.dequantize import dense_copy_of_gguf

            copy = dense_copy_of_gguf(source, cache_root(), weights_digest([source]), self._reporter)
            return Runnable(copy, _info(role, f"the {role} is a GGUF file ({source.name}): {_runtime(backend)} measured a "
                                              "dense float32 copy dequantized by transformers' GGUF loader, every weight "
                                              "exactly its quantized value"))
        if kind == "mlx":
            return self._prepare_mlx(role, backend, source)
        if kind == "hf-quantized" and backend == "mlx":
            raise InputError(f"the {role} is quantized with {source}, which only torch loads: use --backend torch")
        return Runnable(self._paths[role])

    def _prepare_mlx(self, role: str, backend: str, checkpoint: Any) -> Runnable:
        scheme = _mlx_scheme(checkpoint)
        if backend == "mlx":
            slow = " (on Linux MLX runs on its slow CPU backend)" if platform.system() == "Linux" else ""
            return Runnable(checkpoint.path, _info(role, f"the {role} is MLX-quantized ({scheme}): MLX measured it as stored{slow}"))
        from gate.runtime.dequantize import dense_copy_of_mlx, source_files

        digest = weights_digest(source_files(checkpoint.path, list(checkpoint.weight_files)))
        copy = dense_copy_of_mlx(checkpoint, cache_root(), digest, self._reporter)
        why = ("as --backend torch asked" if self._options.backend == "torch"
               else "since MLX has only a slow CPU backend here; --backend mlx measures it on MLX as stored")
        return Runnable(copy, _info(role, f"the {role} is MLX-quantized ({scheme}): torch measured a dense copy "
                                          f"dequantized by MLX, every weight exactly its quantized value, {why}"))

    def _tokenizer_findings(self) -> list[Finding]:
        ggufs = [role for role in _ROLES if self._kinds.get(role, ("",))[0] == "gguf"]
        if not ggufs or len(self._paths) < 2 or self._tokenizer_note is None:
            return []
        return [Finding(Severity.WARNING, "tokenizer-mismatch",
                        f"the tokenizer in the GGUF metadata differs from the other model's: {self._tokenizer_note}", ggufs[0])]

    @functools.cached_property
    def _tokenizer_note(self) -> str | None:
        return tokenizer_difference(self.tokenizer_path("candidate"), self.tokenizer_path("base"))


def tokenizer_difference(a: Path, b: Path) -> str | None:
    """How two checkpoints' tokenizers differ (vocabulary, special tokens, chat template), or None."""
    from gate.runtime.common import load_tokenizer

    first, second = load_tokenizer(a), load_tokenizer(b)
    va, vb = first.get_vocab(), second.get_vocab()
    if va != vb:
        differing = sum(1 for token in set(va) | set(vb) if va.get(token) != vb.get(token))
        return f"{differing} of {max(len(va), len(vb))} vocabulary entries differ"
    if (first.eos_token, first.bos_token) != (second.eos_token, second.bos_token):
        return "the special tokens differ"
    if (first.chat_template or "") != (second.chat_template or ""):
        return "the chat templates differ"
    return None


def _input_kind(path: Path) -> tuple[str, Any]:
    """("gguf", file) | ("mlx", Checkpoint) | ("hf-quantized", method) | ("plain", None)."""
    from gate.inputs.checkpoint import open_checkpoint
    from gate.inputs.gguf import find_gguf

    gguf = find_gguf(path)
    if gguf is not None:
        return "gguf", gguf
    checkpoint = open_checkpoint(path)
    if is_mlx_quantized(checkpoint):
        return "mlx", checkpoint
    settings = checkpoint.quantization
    if settings and isinstance(settings.get("quant_method"), str):
        return "hf-quantized", settings["quant_method"][:40]
    return "plain", None


def is_mlx_quantized(checkpoint: Checkpoint) -> bool:
    """mlx-lm's layout: quantization settings in config.json and packed integer weights beside `.scales`."""
    if not checkpoint.quantization or "quant_method" in checkpoint.quantization:
        return False
    return any(name.endswith(".scales") and name.removesuffix(".scales") + ".weight" in checkpoint.tensors
               for name in checkpoint.tensors)


def _mlx_scheme(checkpoint: Any) -> str:
    settings = checkpoint.quantization or {}
    bits, group = settings.get("bits"), settings.get("group_size")
    return f"{bits}-bit, group size {group}" if isinstance(bits, int) and isinstance(group, int) else "packed weights"


def _runtime(backend: str) -> str:
    return "MLX" if backend == "mlx" else "torch"


def _info(role: str, message: str) -> Finding:
    return Finding(Severity.INFO, "runtime-input", message, role)

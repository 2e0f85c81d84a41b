"""Up-front time estimates: what each measurement will cost, said before any model loads.

The cost model is the usual one for transformer inference. A token through the
blocks costs 2 FLOPs per block weight; a position whose logits are needed costs
2 FLOPs per output-head weight more; attention costs about 4 × hidden × layers
FLOPs per pair of positions. A decoded token (batch 1) costs whichever is
slower: its FLOPs, or reading every weight once. The machine's speed comes
from a calibration of a fraction of a second (`gate.runtime.calibrate`): a
matmul at the compute dtype and a pass over a large array. How much of that
matmul speed a whole model reaches (`EFFICIENCY_*`), and what a load costs beyond
reading the bytes, are first settings, not yet fitted on a quiet machine (the one
comparison so far, on a heavily loaded 2-core CPU, is in docs/measurements.md);
every report records the estimate beside the real time, so they can be fitted
from real runs. `tests/run/test_estimate.py` holds the model to its own arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

from gate.core.errors import GateError
from gate.core.workload import Workload, WorkPlan
from gate.inputs.checkpoint import Checkpoint, open_checkpoint
from gate.measurements.base import ModelStep
from gate.runtime.calibrate import MachineSpeed, calibrate

if TYPE_CHECKING:
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions

# Fractions of the calibrated matmul speed that a whole forward reaches: a big batch of tokens
# (perplexity windows, BBQ token trees) and one decoded token at a time, where kernel launches,
# the KV cache and sampling cost more than the arithmetic.
EFFICIENCY_PREFILL = 0.8
EFFICIENCY_DECODE = 0.25
# A load reads the weights and builds the model; beyond the bytes it costs about this much
# (runtime start-up, tokenizer, module construction).
LOAD_OVERHEAD_SECONDS = 2.0
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class ModelShape:
    """The sizes a model's cost depends on, read from its checkpoint headers (no weights loaded)."""

    block_params: int  # 2-D weights of the transformer blocks
    head_params: int  # the output head (vocab × hidden), tied to the embedding or not
    layers: int
    hidden: int
    weight_bytes: int

    @classmethod
    def of(cls, checkpoint: Checkpoint, bytes_per_weight: int | None = None) -> ModelShape:
        """`bytes_per_weight`: of the compute dtype, where the runtime converts the stored weights."""
        config = checkpoint.config
        hidden = _positive_int(config.get("hidden_size"), 0)
        vocab = _positive_int(config.get("vocab_size"), 0)
        block = sum(t.numel for t in checkpoint.tensors.values()
                    if len(t.shape) == 2 and not _is_embedding_or_head(t.name))
        return cls(block_params=block, head_params=hidden * vocab,
                   layers=_positive_int(config.get("num_hidden_layers"), 1), hidden=hidden,
                   weight_bytes=sum(t.numel * bytes_per_weight if bytes_per_weight else t.nbytes
                                    for t in checkpoint.tensors.values()))

    @property
    def params(self) -> int:
        return self.block_params + self.head_params


@dataclass(frozen=True)
class Estimate:
    measurement: str
    plan: str
    seconds: float
    most: bool = False  # the run stops once its rules are decided, so this is the longest it takes
    # With `most`: the seconds to the first look that can decide (a clear case ends there), and that look in words.
    least: float | None = None
    first_look: str = ""

    def describe(self) -> str:
        said = describe_seconds(self.seconds)
        if not self.most:
            return said
        if self.least is None:
            return f"at most {said}, less once its rules are decided"
        return f"{describe_seconds(self.least)} if decided as early as it can ({self.first_look}), at most {said}"


def workload_seconds(work: Workload, shape: ModelShape, speed: MachineSpeed) -> float:
    flops = (2 * shape.block_params * work.tokens + 2 * shape.head_params * work.logit_positions
             + 4 * shape.hidden * shape.layers * work.attention_pairs)
    prefill = flops / (speed.flops * EFFICIENCY_PREFILL)
    per_step = max(2 * shape.params / (speed.flops * EFFICIENCY_DECODE), shape.weight_bytes / speed.bytes_per_second)
    return prefill + per_step * (work.decode_steps + work.calls)


def load_seconds(shape: ModelShape, speed: MachineSpeed) -> float:
    # Loading reads the file and usually converts its dtype: about three passes over the bytes.
    return LOAD_OVERHEAD_SECONDS + 3 * shape.weight_bytes / speed.bytes_per_second


def estimate(name: str, plan: WorkPlan, shape: ModelShape, speed: MachineSpeed) -> Estimate:
    work = plan.models * workload_seconds(plan.per_model, shape, speed)
    summary = plan.summary
    cap = None if plan.cap_seconds is None else plan.cap_seconds * plan.models  # each model asks as long
    if cap is not None and work > cap:
        if plan.units:  # say up front how far the budget reaches here, so a too-short one is no surprise
            summary += f" (about {int(plan.units * cap / work):,} items here)"
        work = cap
    loads = plan.loads * load_seconds(shape, speed)
    least = None
    if plan.stops_early and plan.first_look is not None:
        least = min(work, plan.models * workload_seconds(plan.first_look.per_model, shape, speed)) + loads
    return Estimate(name, summary, work + loads, most=plan.stops_early, least=least,
                    first_look=plan.first_look.words if plan.first_look is not None else "")


def with_cached_base(plan: WorkPlan) -> WorkPlan:
    """The same plan when the base's run comes from the cache: one model does the work, one loads."""
    return replace(plan, summary=f"{plan.summary}, the base's from the cache", models=1,
                   loads=max(0, plan.loads - plan.loads // 2))


def describe_seconds(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1 h 10 min': an estimate, rounded as one."""
    if seconds < 60:
        return f"about {max(1, round(seconds, -1 if seconds >= 20 else 0)):.0f} s"
    minutes = math.ceil(seconds / 60) if seconds < 600 else round(seconds / 300) * 5
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def _is_embedding_or_head(name: str) -> bool:
    return "embed" in name or name.endswith("lm_head.weight") or name.endswith("wte.weight")


def _positive_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def estimate_plans(steps: Sequence[ModelStep], plans: Mapping[str, Any], tokenizer: Tokenizer, base: Path,
                   options: CheckOptions, cached: Collection[str]) -> dict[str, Estimate]:
    """Each step's estimate for this machine, by name; a step without a workload, or one whose runtime
    cannot be calibrated here (it is missing: the run says so next), gets none. `cached`: steps whose
    base run comes from the cache."""
    from gate.runtime.registry import resolve_runtime

    checkpoint = open_checkpoint(base)
    speeds: dict[tuple[str, str, str], MachineSpeed] = {}
    estimates = {}
    for step in steps:
        work = step.workload(plans[step.name], tokenizer)
        if work is None:
            continue
        try:
            backend = step.backend(options)
            device, dtype = resolve_runtime(backend, options.device, options.dtype, options.runtime)
            runtime = (backend, device, dtype)
            if runtime not in speeds:
                speeds[runtime] = calibrate(backend, device, dtype, ModelShape.of(checkpoint).hidden)
        except (GateError, ImportError, RuntimeError):
            continue
        shape = ModelShape.of(checkpoint, bytes_per_weight=DTYPE_BYTES.get(dtype))
        estimates[step.name] = estimate(step.name, with_cached_base(work) if step.name in cached else work,
                                        shape, speeds[runtime])
    return estimates

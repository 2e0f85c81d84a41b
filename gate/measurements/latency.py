"""Latency of one generate call, candidate against base, on the same prompts.

What is timed follows the paper (Rath & Maliakkal 2026): the wall time of one
generate call on a BBQ chat prompt, prefill plus up to 5 new tokens, with the
model already loaded. Warm-up calls are made first and thrown away (the first
calls pay for kernel compilation, lazy allocation and cold caches).

Decoding is greedy (temperature 0), not the paper's 0.3: the time of a call
depends on how many tokens it produces, not on which, and greedy decoding
makes every repeat of a prompt do exactly the same work, so repeats differ
only by timing noise. New tokens are counted per call: a candidate that stops
early is not "faster" for doing less, which is why decode time per token is
reported beside the per-call figure.

Noise has three sources: the machine (other processes, throttling), the
prompt, and the loaded copy itself. Two loads of one checkpoint were seen to
differ by 1-7% on a CPU, steadily, call after call (where the runtime placed
their memory), so one load per model cannot tell a 1% change in the model
from a 1% difference between two copies. Each repeat is therefore a round
with fresh loads of both models, the load order swapped from round to round.
When both models fit in memory they alternate within the round, one call
each on the same prompt (who goes first alternates too), so a busy machine
slows both alike; otherwise they are timed one after the other within the
round. The ratio's interval resamples prompts and rounds independently (a
pigeonhole bootstrap over the prompts x rounds table), so it carries the
load-to-load spread as well as the prompt-to-prompt one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from gate.measurements.options import DEFAULT_MAX_NEW_TOKENS, DEFAULT_REPEATS, DEFAULT_WARMUP
from gate.runtime.base import Generation, ModelHandle
from gate.core.errors import InputError, MeasurementError
from gate.core.progress import NULL_REPORTER, Reporter, TaskHandle
from gate.core.result import Finding, Interval, Metric, Severity
from gate.core.stats import crossed_bootstrap

TEMPERATURE = 0.0
SEED = 0
LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
# Repeats of one prompt spread wider than this (coefficient of variation): the machine was busy.
NOISY_REPEAT_CV = 0.10

ALTERNATING = "alternating"
SEQUENTIAL = "sequential"


# ---------------------------------------------------------------- one model


@dataclass(frozen=True)
class LatencySample:
    """One timed generate call."""

    prompt: int  # index into the prompt set
    repeat: int
    total_seconds: float  # the whole call: prefill plus decode
    prefill_seconds: float  # up to the first new token
    prompt_tokens: int
    new_tokens: int  # tokens generated, an end-of-sequence token included
    content_tokens: int  # new tokens other than end-of-sequence

    @property
    def decode_seconds(self) -> float:
        """Time after the first new token, which the prefill pass yields."""
        return max(0.0, self.total_seconds - self.prefill_seconds)

    @property
    def decode_steps(self) -> int:
        return self.new_tokens - 1


@dataclass(frozen=True)
class LatencySummary:
    """Per-call statistics over every timed call of one model.

    p95 interpolates linearly between order statistics (numpy's default).
    Token rates are totals over totals, so long calls weigh more, as they do
    on the clock. Decode covers the tokens after the first, which the prefill
    pass already yields.
    """

    calls: int
    mean_seconds: float
    median_seconds: float
    p95_seconds: float
    min_seconds: float
    max_seconds: float
    std_seconds: float  # across calls (prompts differ in length, so this is not noise alone)
    prefill_mean_seconds: float
    prefill_tokens_per_second: float
    decode_tokens_per_second: float | None  # None when no call went past its first token
    mean_new_tokens: float
    repeat_cv: float | None  # timing noise: pooled within-prompt std / mean; None with one repeat


@dataclass(frozen=True)
class LatencyRun:
    """One model timed on a prompt set."""

    samples: tuple[LatencySample, ...]
    prompts: int
    repeats: int
    warmup: int
    max_new_tokens: int
    temperature: float
    prompts_fingerprint: str  # identifies the exact prompt token ids
    schedule: str  # ALTERNATING (both models held, timed in turns) or SEQUENTIAL
    summary: LatencySummary
    peak_memory_bytes: int | None  # as the runtime reports it, highest over loads; alternating: both models together
    runtime: dict  # ModelHandle.runtime_info(): backend, version, device, dtype
    loads: int = 1  # separate loads of the model the samples come from (one per round)

    def table(self, field: str = "total_seconds") -> np.ndarray:
        """`field` by prompt (rows) and repeat (columns)."""
        cells = np.zeros((self.prompts, self.repeats))
        for sample in self.samples:
            cells[sample.prompt, sample.repeat] += getattr(sample, field)
        return cells


def summarize_samples(samples: Sequence[LatencySample]) -> LatencySummary:
    """Mean, median, p95, token rates and the repeat-to-repeat spread of timed calls."""
    if not samples:
        raise MeasurementError("no timed calls to summarise")
    total = np.array([s.total_seconds for s in samples], dtype=np.float64)
    prefill = np.array([s.prefill_seconds for s in samples], dtype=np.float64)
    prompt_tokens = np.array([s.prompt_tokens for s in samples], dtype=np.float64)
    new_tokens = np.array([s.new_tokens for s in samples], dtype=np.float64)
    decode_seconds = np.clip(total - prefill, 0.0, None)
    decode_steps = new_tokens - 1
    decode_rate = None
    if decode_steps.sum() > 0 and decode_seconds[decode_steps > 0].sum() > 0:
        decode_rate = float(decode_steps.sum() / decode_seconds[decode_steps > 0].sum())
    return LatencySummary(
        calls=len(samples),
        mean_seconds=float(total.mean()),
        median_seconds=float(np.median(total)),
        p95_seconds=float(np.percentile(total, 95)),
        min_seconds=float(total.min()),
        max_seconds=float(total.max()),
        std_seconds=float(total.std(ddof=1)) if len(total) > 1 else 0.0,
        prefill_mean_seconds=float(prefill.mean()),
        prefill_tokens_per_second=float(prompt_tokens.sum() / prefill.sum()) if prefill.sum() > 0 else math.inf,
        decode_tokens_per_second=decode_rate,
        mean_new_tokens=float(new_tokens.mean()),
        repeat_cv=_repeat_cv(samples),
    )


def _repeat_cv(samples: Sequence[LatencySample]) -> float | None:
    """Pooled within-prompt standard deviation over the mean: how much repeats of one prompt disagree."""
    by_prompt: dict[int, list[float]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.prompt, []).append(sample.total_seconds)
    groups = [np.array(times) for times in by_prompt.values() if len(times) > 1]
    if not groups:
        return None
    squares = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    mean = float(np.mean(np.concatenate(groups)))
    return math.sqrt(squares / dof) / mean if mean > 0 else None


def prompts_fingerprint(prompts: Sequence[Sequence[int]]) -> str:
    return hashlib.sha256(repr([list(map(int, p)) for p in prompts]).encode()).hexdigest()[:16]


class _Timer:
    """Times one model's generate calls, over one or more loads of it, and keeps the samples."""

    def __init__(self, prompts: tuple[tuple[int, ...], ...], max_new_tokens: int):
        self.prompts, self.max_new_tokens = prompts, max_new_tokens
        self.samples: list[LatencySample] = []
        self.handle: ModelHandle | None = None
        self.eos_ids: frozenset[int] = frozenset()
        self.runtime: dict = {}
        self.peak_memory: int | None = None
        self.loads = 0

    def attach(self, handle: ModelHandle) -> None:
        self.handle, self.eos_ids, self.runtime = handle, frozenset(handle.eos_ids), handle.runtime_info()
        self.loads += 1

    def detach(self) -> None:
        """Keep the highest peak memory any load reached; the handle itself is closed by whoever loaded it."""
        peak = self.handle.peak_memory_bytes() if self.handle is not None else None
        if peak is not None:
            self.peak_memory = peak if self.peak_memory is None else max(self.peak_memory, peak)
        self.handle = None

    def _call(self, index: int) -> Generation:
        generation = self.handle.generate(self.prompts[index], self.max_new_tokens, TEMPERATURE, SEED)
        if not generation.token_ids:
            raise MeasurementError(f"the model generated no token at all for latency prompt {index}")
        times = (generation.total_seconds, generation.prefill_seconds)
        if not all(math.isfinite(t) for t in times) or generation.total_seconds <= 0 or generation.prefill_seconds < 0:
            raise MeasurementError(f"the runtime reported an impossible time for latency prompt {index}: "
                                   f"total {generation.total_seconds}, prefill {generation.prefill_seconds}")
        return generation

    def warm_up(self, calls: int, task: TaskHandle) -> None:
        for call in range(calls):
            self._call(call % len(self.prompts))
            task.advance()

    def time_prompt(self, index: int, repeat: int) -> None:
        generation = self._call(index)
        content = sum(1 for token in generation.token_ids if token not in self.eos_ids)
        self.samples.append(LatencySample(
            prompt=index, repeat=repeat, total_seconds=float(generation.total_seconds),
            prefill_seconds=min(float(generation.prefill_seconds), float(generation.total_seconds)),
            prompt_tokens=int(generation.prompt_tokens), new_tokens=len(generation.token_ids),
            content_tokens=content))

    def time_pass(self, repeat: int, task: TaskHandle) -> None:
        for index in range(len(self.prompts)):
            self.time_prompt(index, repeat)
            task.advance()

    def run(self, repeats: int, warmup: int, schedule: str) -> LatencyRun:
        if all(sample.content_tokens == 0 for sample in self.samples):
            raise MeasurementError("the model generated nothing but end-of-sequence on every latency prompt; "
                                   "its time would be the prompt's alone")
        return LatencyRun(
            samples=tuple(self.samples), prompts=len(self.prompts), repeats=repeats, warmup=warmup,
            max_new_tokens=self.max_new_tokens, temperature=TEMPERATURE,
            prompts_fingerprint=prompts_fingerprint(self.prompts), schedule=schedule,
            summary=summarize_samples(self.samples), peak_memory_bytes=self.peak_memory,
            runtime=self.runtime, loads=self.loads)


def _time_in_turns(timers: Sequence[_Timer], repeat: int, task: Any) -> None:
    """One call per model on each prompt, back to back; who goes first alternates by prompt and by repeat."""
    for index in range(len(timers[0].prompts)):
        for timer in (timers if (repeat + index) % 2 == 0 else timers[::-1]):
            timer.time_prompt(index, repeat)
            task.advance()


def _checked_prompts(prompts: Sequence[Sequence[int]], repeats: int, warmup: int,
                     max_new_tokens: int) -> tuple[tuple[int, ...], ...]:
    if len(prompts) == 0:
        raise InputError("no prompts to time: the latency prompt set is empty")
    checked = tuple(tuple(int(t) for t in prompt) for prompt in prompts)
    empty = [i for i, prompt in enumerate(checked) if not prompt]
    if empty:
        raise InputError(f"latency prompt {empty[0]} has no tokens")
    if repeats < 1:
        raise InputError(f"latency repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise InputError(f"latency warm-up calls cannot be negative, got {warmup}")
    if max_new_tokens < 1:
        raise InputError(f"latency needs at least 1 new token per call, got {max_new_tokens}")
    return checked


def measure_latency(
    handle: ModelHandle,
    prompts: Sequence[Sequence[int]],
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    reporter: Reporter = NULL_REPORTER,
) -> LatencyRun:
    """One loaded model: `repeats` passes of greedy generate calls over all prompts after `warmup` discarded ones.

    Passes, not each prompt's repeats in a row, so drift during the run is
    spread over every prompt rather than landing on the last ones.
    """
    checked = _checked_prompts(prompts, repeats, warmup, max_new_tokens)
    timer = _Timer(checked, max_new_tokens)
    timer.attach(handle)
    with reporter.task("latency", total=warmup + repeats * len(checked)) as task:
        timer.warm_up(warmup, task)
        for repeat in range(repeats):
            timer.time_pass(repeat, task)
    timer.detach()
    return timer.run(repeats, warmup, SEQUENTIAL)


def measure_latency_alternating(
    base: ModelHandle,
    candidate: ModelHandle,
    prompts: Sequence[Sequence[int]],
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    reporter: Reporter = NULL_REPORTER,
) -> tuple[LatencyRun, LatencyRun]:
    """Two loaded models held at once, each prompt timed on both back to back, `repeats` passes.

    Within one load of each: the ratio's interval then covers the machine
    and the prompts but not the difference between these two loaded copies;
    `measure_latency_in_rounds` covers that too.
    """
    checked = _checked_prompts(prompts, repeats, warmup, max_new_tokens)
    timers = (_Timer(checked, max_new_tokens), _Timer(checked, max_new_tokens))
    with reporter.task("latency (base and candidate in turns)", total=2 * (warmup + repeats * len(checked))) as task:
        for timer, handle in zip(timers, (base, candidate)):
            timer.attach(handle)
            timer.warm_up(warmup, task)
        for repeat in range(repeats):
            _time_in_turns(timers, repeat, task)
    for timer in timers:
        timer.detach()
    return timers[0].run(repeats, warmup, ALTERNATING), timers[1].run(repeats, warmup, ALTERNATING)


ROLES = ("base", "candidate")


def measure_latency_in_rounds(
    load: Callable[[str], ModelHandle],
    prompts: Sequence[Sequence[int]],
    rounds: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    hold_both: Callable[[ModelHandle], bool] = lambda first: True,
    reporter: Reporter = NULL_REPORTER,
) -> tuple[LatencyRun, LatencyRun]:
    """Base and candidate timed in `rounds` rounds, each with fresh loads of both: one call per prompt per round.

    `load(role)` loads "base" or "candidate"; every handle loaded here is
    closed here, whatever fails. Round r loads base first when r is even,
    the candidate first when odd, so neither is always the second copy in
    memory. `hold_both(first handle)`, asked once, says whether the second
    model may be loaded beside the first: then the two alternate call by
    call; otherwise each is timed alone, one after the other.
    """
    checked = _checked_prompts(prompts, rounds, warmup, max_new_tokens)
    timers = {role: _Timer(checked, max_new_tokens) for role in ROLES}
    schedule = None
    calls = 2 * rounds * (warmup + len(checked))
    with reporter.task("latency (fresh loads each round)", total=calls) as task:
        for round_ in range(rounds):
            order = ROLES if round_ % 2 == 0 else ROLES[::-1]
            first = load(order[0])
            try:
                if schedule is None:
                    schedule = ALTERNATING if hold_both(first) else SEQUENTIAL
                timers[order[0]].attach(first)
                if schedule == ALTERNATING:
                    second = load(order[1])
                    try:
                        timers[order[1]].attach(second)
                        pair = [timers[role] for role in ROLES]  # not load order: who goes first must alternate
                        for timer in pair:
                            timer.warm_up(warmup, task)
                        _time_in_turns(pair, round_, task)
                    finally:
                        timers[order[1]].detach()
                        second.close()
                else:
                    timers[order[0]].warm_up(warmup, task)
                    timers[order[0]].time_pass(round_, task)
            finally:
                timers[order[0]].detach()
                first.close()
            if schedule == SEQUENTIAL:
                _time_alone(load, order[1], timers[order[1]], warmup, round_, task)
    return timers["base"].run(rounds, warmup, schedule), timers["candidate"].run(rounds, warmup, schedule)


def _time_alone(load: Callable[[str], ModelHandle], role: str, timer: _Timer, warmup: int, round_: int,
                task: Any) -> None:
    handle = load(role)
    try:
        timer.attach(handle)
        timer.warm_up(warmup, task)
        timer.time_pass(round_, task)
    finally:
        timer.detach()
        handle.close()


# ---------------------------------------------------------------- base vs candidate


@dataclass(frozen=True)
class LatencyComparison:
    base: LatencyRun
    candidate: LatencyRun
    ratio: float  # candidate/base mean per-call latency
    ratio_interval: Interval | None  # paired bootstrap over prompts
    prefill_ratio: float
    prefill_ratio_interval: Interval | None
    decode_ratio: float | None  # candidate/base seconds per decode token; None when a model never decoded
    decode_ratio_interval: Interval | None
    statement: str  # whether the candidate bought any speed, in one line
    findings: tuple[Finding, ...]

    @property
    def prompts(self) -> int:
        return self.base.prompts

    def metrics(self) -> list[Metric]:
        n = self.prompts
        base, cand = self.base.summary, self.candidate.summary
        metrics = [
            Metric("latency.ratio", self.ratio, base=base.mean_seconds, candidate=cand.mean_seconds,
                   interval=self.ratio_interval, n=n, unit="x"),
            Metric("latency.prefill_ratio", self.prefill_ratio, base=base.prefill_mean_seconds,
                   candidate=cand.prefill_mean_seconds, interval=self.prefill_ratio_interval, n=n, unit="x"),
            Metric("latency.decode_ratio", self.decode_ratio,
                   base=_inverse(base.decode_tokens_per_second), candidate=_inverse(cand.decode_tokens_per_second),
                   interval=self.decode_ratio_interval, n=n, unit="x"),
        ]
        for role, run in (("base", self.base), ("candidate", self.candidate)):
            s, calls = run.summary, run.summary.calls
            metrics += [
                Metric(f"latency.{role}_mean_s", s.mean_seconds, n=calls, unit="s"),
                Metric(f"latency.{role}_median_s", s.median_seconds, n=calls, unit="s"),
                Metric(f"latency.{role}_p95_s", s.p95_seconds, n=calls, unit="s"),
                Metric(f"latency.{role}_prefill_tokens_per_s", s.prefill_tokens_per_second, n=calls, unit="tokens/s"),
                Metric(f"latency.{role}_decode_tokens_per_s", s.decode_tokens_per_second, n=calls, unit="tokens/s"),
                Metric(f"latency.{role}_repeat_cv", s.repeat_cv, n=calls, unit=""),
                Metric(f"latency.{role}_peak_memory_bytes",
                       None if run.peak_memory_bytes is None else float(run.peak_memory_bytes), unit="bytes"),
            ]
        return metrics


def compare_latency(base_run: LatencyRun, candidate_run: LatencyRun, n_resamples: int = DEFAULT_RESAMPLES,
                    level: float = LEVEL) -> LatencyComparison:
    """Candidate/base ratios of per-call, prefill and per-token decode time, paired over prompts and repeats."""
    if base_run.prompts_fingerprint != candidate_run.prompts_fingerprint or base_run.repeats != candidate_run.repeats:
        raise MeasurementError("base and candidate were timed on different prompts or repeats; "
                               "latency can only be compared on the same calls")
    findings: list[Finding] = []
    base_total, cand_total = base_run.table("total_seconds"), candidate_run.table("total_seconds")
    base_prefill, cand_prefill = base_run.table("prefill_seconds"), candidate_run.table("prefill_seconds")
    ratio = float(cand_total.sum() / base_total.sum())
    prefill_ratio = float(cand_prefill.sum() / base_prefill.sum())
    ratio_interval = prefill_interval = None
    if base_run.prompts >= 2:
        ratio_interval = crossed_bootstrap(base_total, cand_total, _ratio_of_sums, n_resamples, level)
        prefill_interval = crossed_bootstrap(base_prefill, cand_prefill, _ratio_of_sums, n_resamples, level)
    else:
        findings.append(Finding(Severity.WARNING, "latency-single-prompt",
                                "latency was timed on one prompt only: the ratio has no interval"))
    decode_ratio, decode_interval = _decode_ratio(base_run, candidate_run, n_resamples, level)
    findings += _findings(base_run, candidate_run, decode_ratio)
    statement = speed_statement(ratio, ratio_interval, base_run.prompts)
    findings.append(Finding(Severity.INFO, "latency-speed", statement))
    return LatencyComparison(base_run, candidate_run, ratio, ratio_interval, prefill_ratio, prefill_interval,
                             decode_ratio, decode_interval, statement, tuple(findings))


def _ratio_of_sums(base_sums: np.ndarray, candidate_sums: np.ndarray) -> np.ndarray:
    return candidate_sums[0] / base_sums[0]


def _decode_ratio(base_run: LatencyRun, candidate_run: LatencyRun, n_resamples: int,
                  level: float) -> tuple[float | None, Interval | None]:
    """Seconds per decode token, candidate over base, on the prompts where both models decoded."""
    records = []
    for run in (base_run, candidate_run):
        records.append(np.stack([run.table("decode_seconds"), run.table("decode_steps")]))
    both = (records[0][1].sum(axis=1) > 0) & (records[1][1].sum(axis=1) > 0)
    if not both.any():
        return None, None
    base_rec, cand_rec = records[0][:, both], records[1][:, both]
    value = float(_per_token_ratio(base_rec.sum(axis=(1, 2))[:, None], cand_rec.sum(axis=(1, 2))[:, None])[0])
    if not math.isfinite(value) or value <= 0:
        return None, None
    interval = None
    if both.sum() >= 2:
        interval = crossed_bootstrap(base_rec, cand_rec, _per_token_ratio, n_resamples, level)
    return value, interval


def _per_token_ratio(base_sums: np.ndarray, candidate_sums: np.ndarray) -> np.ndarray:
    """(candidate seconds / token) / (base seconds / token); sums are (seconds, tokens) x resamples."""
    return (candidate_sums[0] / candidate_sums[1]) / (base_sums[0] / base_sums[1])


# Two loaded copies of the same checkpoint were seen to differ by up to 7% on a
# 2-core CPU. Rounds with fresh loads put that spread into the interval; a
# change smaller than this is still not called a speed-up or a slowdown, since
# a few rounds estimate the load-to-load spread only roughly.
MATERIAL_CHANGE = 0.05


def speed_statement(ratio: float, interval: Interval | None, prompts: int) -> str:
    """One line saying whether the candidate is measurably faster, slower, or neither."""
    if interval is None:
        return f"no interval (one prompt): candidate/base {ratio:.2f}; speed cannot be judged"
    shown = f"candidate/base {ratio:.2f} [{interval.low:.2f}, {interval.high:.2f}] over {prompts} prompts"
    if interval.high < 1 - MATERIAL_CHANGE:
        return f"speed-up: {shown}, {1 - ratio:.0%} less time per call"
    if interval.low > 1 + MATERIAL_CHANGE:
        return f"slowdown: {shown}, {ratio - 1:.0%} more time per call"
    if interval.high < 1 or interval.low > 1:
        return (f"no material change: {shown}; a {abs(ratio - 1):.0%} difference is within what two loaded "
                f"copies of one model differ by on a CPU (up to {MATERIAL_CHANGE:.0%})")
    return f"no speed-up: {shown}"


def _findings(base_run: LatencyRun, candidate_run: LatencyRun, decode_ratio: float | None) -> list[Finding]:
    findings = []
    runtime = base_run.runtime
    if runtime.get("mlx_linux_cpu") or candidate_run.runtime.get("mlx_linux_cpu"):
        findings.append(Finding(
            Severity.WARNING, "mlx-linux-cpu",
            "timed with MLX's CPU backend on Linux, whose bundled reference BLAS is slow: these figures describe "
            "that runtime, not MLX on an Apple device"))
    keys = ("backend", "device", "dtype")
    if any(runtime.get(k) != candidate_run.runtime.get(k) for k in keys):
        findings.append(Finding(
            Severity.WARNING, "latency-runtime-mismatch",
            "base and candidate ran on different runtimes ("
            + " vs ".join("/".join(str(r.get(k)) for k in keys) for r in (runtime, candidate_run.runtime))
            + "): the ratio mixes runtime and model"))
    base_tokens, cand_tokens = base_run.summary.mean_new_tokens, candidate_run.summary.mean_new_tokens
    if cand_tokens != base_tokens:
        per_token = f" (decode time per token, candidate/base: {decode_ratio:.2f})" if decode_ratio else ""
        findings.append(Finding(
            Severity.WARNING, "latency-unequal-work",
            f"the candidate generated {cand_tokens:.2f} new tokens per call against the base's {base_tokens:.2f}: "
            f"the per-call ratio compares unequal work; compare time per decode token{per_token}"))
    if base_run.schedule == SEQUENTIAL:
        findings.append(Finding(
            Severity.INFO, "latency-sequential",
            "base and candidate were timed one after the other, not in turns: drift of the machine between "
            "the two runs is not cancelled"))
    for role, run in (("base", base_run), ("candidate", candidate_run)):
        cv = run.summary.repeat_cv
        if cv is not None and cv > NOISY_REPEAT_CV:
            findings.append(Finding(
                Severity.WARNING, "latency-noisy",
                f"repeats of the same prompt differ by {cv:.0%} (coefficient of variation): the machine was busy "
                "or throttling; more repeats or a quiet machine narrow the interval", subject=role))
    return findings


def _inverse(rate: float | None) -> float | None:
    return None if not rate else 1.0 / rate

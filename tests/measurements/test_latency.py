"""Latency against the base: statistics on known samples, and timing on a tiny real model with both backends.

Timing tests never assert a speed: this machine is shared and busy. They
check what was timed (how many calls, which prompts, what was discarded),
that the figures are consistent, and that the handles are released.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny_model import write_tiny_model
from gate.runtime.base import Generation
from gate.runtime.fake import FakeModel
from gate.runtime.common import load_tokenizer
from gate.runtime.registry import load_model
from gate.run.check import CheckOptions
from gate.core.errors import BackendUnavailableError, InputError, MeasurementError
from gate.measurements.latency import (
    ALTERNATING,
    SEQUENTIAL,
    LatencyRun,
    LatencySample,
    compare_latency,
    measure_latency,
    measure_latency_alternating,
    measure_latency_in_rounds,
    speed_statement,
    summarize_samples,
)
from gate.measurements.latency_step import LatencyStep, choose_backend
from gate.core.progress import NULL_REPORTER
from gate.measurements.base import PairContext
from gate.measurements.options import LatencyOptions
from gate.core.result import Interval, Severity

try:
    import mlx.core  # noqa: F401
    import mlx_lm  # noqa: F401

    HAS_MLX = True
except ImportError:
    HAS_MLX = False

BACKENDS = ["torch", pytest.param("mlx", marks=pytest.mark.skipif(not HAS_MLX, reason="mlx not installed"))]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a shared, busy CPU torch's worker threads wait on each other: one thread keeps these tests fast."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample(prompt: int, repeat: int, total: float, prefill: float, prompt_tokens: int = 10, new_tokens: int = 5,
           content_tokens: int | None = None) -> LatencySample:
    return LatencySample(prompt, repeat, total, prefill, prompt_tokens, new_tokens,
                         new_tokens if content_tokens is None else content_tokens)


def synthetic_run(samples: list[LatencySample], prompts: int, repeats: int, runtime: dict | None = None,
                  schedule: str = ALTERNATING) -> LatencyRun:
    return LatencyRun(samples=tuple(samples), prompts=prompts, repeats=repeats, warmup=0, max_new_tokens=5,
                      temperature=0.0, prompts_fingerprint="same", schedule=schedule,
                      summary=summarize_samples(samples), peak_memory_bytes=None,
                      runtime=runtime or {"backend": "torch", "device": "cpu", "dtype": "float32"})


def scaled_run(seconds_by_prompt: list[float], scale: float = 1.0, repeats: int = 2, **kwargs) -> LatencyRun:
    """A run where prompt i takes seconds_by_prompt[i] * scale on every repeat, a fifth of it prefill."""
    samples = [sample(i, r, t * scale, 0.2 * t * scale)
               for r in range(repeats) for i, t in enumerate(seconds_by_prompt)]
    return synthetic_run(samples, len(seconds_by_prompt), repeats, **kwargs)


# ---------------------------------------------------------------- pure statistics


def test_summary_statistics_on_known_samples():
    samples = [
        sample(0, 0, total=1.0, prefill=0.2, prompt_tokens=10, new_tokens=5),
        sample(1, 0, total=2.0, prefill=0.4, prompt_tokens=20, new_tokens=5),
        sample(0, 1, total=3.0, prefill=0.2, prompt_tokens=10, new_tokens=3),
        sample(1, 1, total=4.0, prefill=0.4, prompt_tokens=20, new_tokens=1),
    ]
    s = summarize_samples(samples)
    assert s.calls == 4
    assert s.mean_seconds == pytest.approx(2.5)
    assert s.median_seconds == pytest.approx(2.5)
    assert s.p95_seconds == pytest.approx(3.85)  # linear between the 3rd and 4th order statistics
    assert (s.min_seconds, s.max_seconds) == (1.0, 4.0)
    assert s.prefill_mean_seconds == pytest.approx(0.3)
    assert s.prefill_tokens_per_second == pytest.approx(60 / 1.2)
    # Decode: 4 + 4 + 2 tokens after the first, in 0.8 + 1.6 + 2.8 s (the eos-only call decodes nothing).
    assert s.decode_tokens_per_second == pytest.approx(10 / 5.2)
    assert s.mean_new_tokens == pytest.approx(3.5)
    # Within-prompt spread: both prompts' repeats differ by 2 s -> pooled std sqrt(2), over the mean 2.5.
    assert s.repeat_cv == pytest.approx(math.sqrt(2) / 2.5)


def test_one_repeat_has_no_spread_and_single_token_calls_no_decode_rate():
    s = summarize_samples([sample(0, 0, 1.0, 1.0, new_tokens=1), sample(1, 0, 2.0, 2.0, new_tokens=1)])
    assert s.repeat_cv is None
    assert s.decode_tokens_per_second is None


def test_ratio_and_statement_for_a_faster_candidate():
    times = [1.0, 2.0, 1.5, 3.0, 2.5, 1.2]
    comparison = compare_latency(scaled_run(times), scaled_run(times, scale=0.5))
    assert comparison.ratio == pytest.approx(0.5)
    assert comparison.ratio_interval.high < 1
    assert comparison.statement.startswith("speed-up: candidate/base 0.50")
    ratio = next(m for m in comparison.metrics() if m.key == "latency.ratio")
    assert ratio.base == pytest.approx(np.mean(times)) and ratio.candidate == pytest.approx(np.mean(times) / 2)
    assert ratio.n == len(times)
    assert comparison.decode_ratio == pytest.approx(0.5)


def test_identical_runs_give_ratio_one_and_no_speed_up():
    run = scaled_run([1.0, 2.0, 1.5, 3.0])
    comparison = compare_latency(run, run)
    assert comparison.ratio == 1.0
    assert comparison.ratio_interval.low == pytest.approx(1.0) and comparison.ratio_interval.high == pytest.approx(1.0)
    assert comparison.statement.startswith("no speed-up")
    assert any(f.code == "latency-speed" and f.severity is Severity.INFO for f in comparison.findings)


@pytest.mark.parametrize("ratio, low, high, start", [
    (1.2, 1.1, 1.3, "slowdown"), (0.8, 0.7, 0.9, "speed-up"), (1.01, 0.97, 1.05, "no speed-up"),
])
def test_speed_statement(ratio, low, high, start):
    statement = speed_statement(ratio, Interval(low, high), 8)
    assert statement.startswith(start)
    assert f"[{low:.2f}, {high:.2f}]" in statement


def test_a_candidate_that_stops_early_is_flagged_as_doing_less_work():
    base = scaled_run([1.0, 2.0, 1.5])
    early = [sample(s.prompt, s.repeat, s.total_seconds * 0.5, s.prefill_seconds, new_tokens=2)
             for s in base.samples]
    comparison = compare_latency(base, synthetic_run(early, 3, 2))
    work = [f for f in comparison.findings if f.code == "latency-unequal-work"]
    assert work and work[0].severity is Severity.WARNING
    assert "2.00 new tokens per call against the base's 5.00" in work[0].message


def test_mlx_on_linux_cpu_and_sequential_timing_are_reported():
    runtime = {"backend": "mlx", "device": "cpu", "dtype": "float32", "mlx_linux_cpu": True}
    run = scaled_run([1.0, 2.0], runtime=runtime, schedule=SEQUENTIAL)
    codes = {f.code: f.severity for f in compare_latency(run, run).findings}
    assert codes["mlx-linux-cpu"] is Severity.WARNING
    assert codes["latency-sequential"] is Severity.INFO


def test_one_prompt_gives_no_interval():
    run = scaled_run([1.0])
    comparison = compare_latency(run, run)
    assert comparison.ratio_interval is None
    assert any(f.code == "latency-single-prompt" for f in comparison.findings)


def test_runs_on_different_prompts_cannot_be_compared():
    base = scaled_run([1.0, 2.0])
    other = LatencyRun(**{**base.__dict__, "prompts_fingerprint": "other"})
    with pytest.raises(MeasurementError, match="different prompts"):
        compare_latency(base, other)


# ---------------------------------------------------------------- bad input and broken models


def test_empty_prompt_set_is_an_input_error():
    handle = FakeModel(script=[Generation((5,), "A", 3, 0.1, 0.2)])
    with pytest.raises(InputError, match="empty"):
        measure_latency(handle, [])
    with pytest.raises(InputError, match="no tokens"):
        measure_latency(handle, [[1, 2], []])
    assert handle.calls == 0


def test_a_generation_without_tokens_is_a_measurement_error():
    handle = FakeModel(script=[Generation((), "", 3, 0.1, 0.1)])
    with pytest.raises(MeasurementError, match="no token"):
        measure_latency(handle, [[1, 2, 3]], repeats=1, warmup=0)


def test_a_nonfinite_time_is_a_measurement_error():
    handle = FakeModel(script=[Generation((5,), "A", 3, math.nan, 0.1)])
    with pytest.raises(MeasurementError, match="impossible time"):
        measure_latency(handle, [[1, 2, 3]], repeats=1, warmup=0)


def test_known_times_from_the_fake_clock_come_out_in_the_summary():
    """0.5 s a token: a 3-token prompt's prefill (to the first new token) is 1.5 s, each later token 0.5 s."""
    handle = FakeModel(16, eos_ids=frozenset(), seconds_per_token=0.5)
    run = measure_latency(handle, [[1, 2, 3], [4, 5, 6, 7, 8]], repeats=2, warmup=1, max_new_tokens=4)
    assert handle.calls == 1 + 2 * 2 and run.runtime["backend"] == "fake"  # one warm-up call, then 2 passes
    assert sorted({(s.prompt, s.prefill_seconds, s.total_seconds) for s in run.samples}) == [
        (0, 1.5, 3.0), (1, 2.5, 4.0)]
    assert run.summary.mean_seconds == pytest.approx(3.5)
    assert run.summary.decode_tokens_per_second == pytest.approx(2.0)


@pytest.fixture(scope="module")
def eos_only_dir(tmp_path_factory) -> Path:
    """The tiny model with every token declared end-of-sequence: each call ends at its first token."""
    path = write_tiny_model(tmp_path_factory.mktemp("eos-only") / "model")
    config = json.loads((path / "config.json").read_text())
    config["eos_token_id"] = list(range(config["vocab_size"]))
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_that_only_ends_generates_nothing(eos_only_dir, backend):
    handle = load_model(eos_only_dir, backend=backend, device="cpu", dtype="float32")
    try:
        prompts = [handle.tokenizer.encode("The doctor walked to the river")]
        with pytest.raises(MeasurementError, match="nothing but end-of-sequence"):
            measure_latency(handle, prompts, repeats=2, warmup=0)
    finally:
        handle.close()


# ---------------------------------------------------------------- timing the tiny model


@pytest.fixture(scope="module")
def tiny_prompts(tiny_model_dir) -> list[list[int]]:
    tokenizer = load_tokenizer(tiny_model_dir)
    texts = ("The doctor walked to the river", "A teacher looked at the market in the morning",
             "Context: Two people met at the station.\nQuestion: Who was late?\nAnswer:")
    return [tokenizer.encode(text) for text in texts]


@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_are_prompts_times_repeats_with_warm_up_discarded(tiny_model_dir, tiny_prompts, backend):
    handle = load_model(tiny_model_dir, backend=backend, device="cpu", dtype="float32")
    calls = []
    generate = handle.generate
    handle.generate = lambda *args, **kwargs: calls.append(args[0]) or generate(*args, **kwargs)
    try:
        run = measure_latency(handle, tiny_prompts, repeats=2, warmup=3, max_new_tokens=4)
    finally:
        handle.close()
    assert len(calls) == 3 + 2 * 3  # warm-up calls are made, then dropped
    assert len(run.samples) == run.summary.calls == 6
    assert sorted((s.prompt, s.repeat) for s in run.samples) == [(p, r) for p in range(3) for r in range(2)]
    for s in run.samples:
        assert 0 <= s.prefill_seconds <= s.total_seconds
        assert 1 <= s.new_tokens <= 4
        assert s.prompt_tokens == len(tiny_prompts[s.prompt])
    assert run.runtime["backend"] == backend
    assert run.runtime["mlx_linux_cpu"] == (backend == "mlx" and sys.platform == "linux")
    assert run.schedule == SEQUENTIAL and run.warmup == 3 and run.temperature == 0.0
    assert run.summary.min_seconds <= run.summary.median_seconds <= run.summary.p95_seconds <= run.summary.max_seconds


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_against_itself_in_turns_has_an_interval_containing_one(tiny_model_dir, tiny_prompts, backend):
    # One handle in both roles: two loaded copies can differ by a few percent (where the runtime placed
    # their memory), which is a fact about the copies, not about the pairing tested here.
    handle = load_model(tiny_model_dir, backend=backend, device="cpu", dtype="float32")
    prompts = tiny_prompts * 4  # 12 prompts: the interval is over prompts
    try:
        base_run, cand_run = measure_latency_alternating(handle, handle, prompts, repeats=3, warmup=2)
    finally:
        handle.close()
    assert base_run.schedule == cand_run.schedule == ALTERNATING
    assert len(base_run.samples) == len(cand_run.samples) == 36
    # Greedy decoding: the same model does exactly the same work on every call.
    assert base_run.summary.mean_new_tokens == cand_run.summary.mean_new_tokens
    # A wide level keeps a busy machine from failing the test by chance; a bias in the pairing would still show.
    comparison = compare_latency(base_run, cand_run, level=0.999)
    assert comparison.ratio_interval.low <= 1.0 <= comparison.ratio_interval.high
    assert not any(f.code == "latency-unequal-work" for f in comparison.findings)


class CountingLoader:
    """Loads the tiny model afresh for each role asked, and remembers every handle and the order."""

    def __init__(self, path: Path, backend: str):
        self.path, self.backend = path, backend
        self.loaded: list[tuple[str, object]] = []

    def __call__(self, role: str):
        handle = load_model(self.path, backend=self.backend, device="cpu", dtype="float32")
        self.loaded.append((role, handle))
        return handle

    def all_closed(self) -> bool:
        return all(_closed(handle) for _, handle in self.loaded)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rounds_load_both_models_afresh_and_swap_who_loads_first(tiny_model_dir, tiny_prompts, backend):
    load = CountingLoader(tiny_model_dir, backend)
    asked = []
    base_run, cand_run = measure_latency_in_rounds(load, tiny_prompts, rounds=3, warmup=1,
                                                   hold_both=lambda first: asked.append(first) or True)
    assert [role for role, _ in load.loaded] == ["base", "candidate", "candidate", "base", "base", "candidate"]
    assert len(asked) == 1  # whether both fit is decided once, on the first load
    assert load.all_closed()
    assert base_run.schedule == cand_run.schedule == ALTERNATING
    assert base_run.loads == cand_run.loads == 3 and base_run.repeats == 3
    for run in (base_run, cand_run):
        assert sorted((s.prompt, s.repeat) for s in run.samples) == [(p, r) for p in range(3) for r in range(3)]
        assert run.peak_memory_bytes is None or run.peak_memory_bytes > 0


def test_who_goes_first_on_a_prompt_alternates_from_round_to_round(tiny_model_dir, tiny_prompts):
    calls = []

    def load(role):
        handle = load_model(tiny_model_dir, backend="torch", device="cpu", dtype="float32")
        generate = handle.generate
        handle.generate = lambda prompt, *a, **k: calls.append((role, tuple(prompt))) or generate(prompt, *a, **k)
        return handle

    measure_latency_in_rounds(load, tiny_prompts, rounds=2, warmup=0)
    firsts = {}
    for index in range(0, len(calls), 2):  # timed calls come in back-to-back pairs on one prompt
        (role, prompt), (other, same) = calls[index], calls[index + 1]
        assert prompt == same and role != other
        firsts.setdefault(prompt, []).append(role)
    assert all(sorted(roles) == ["base", "candidate"] for roles in firsts.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_rounds_one_after_the_other_never_hold_two_models(tiny_model_dir, tiny_prompts, backend):
    load = CountingLoader(tiny_model_dir, backend)
    open_at_load = []
    original = load.__call__

    def counting(role):
        open_at_load.append(sum(1 for _, handle in load.loaded if not _closed(handle)))
        return original(role)

    base_run, cand_run = measure_latency_in_rounds(counting, tiny_prompts, rounds=2, warmup=0,
                                                   hold_both=lambda first: False)
    assert open_at_load == [0, 0, 0, 0]
    assert [role for role, _ in load.loaded] == ["base", "candidate", "candidate", "base"]
    assert base_run.schedule == cand_run.schedule == SEQUENTIAL
    assert load.all_closed()


def _closed(handle) -> bool:
    try:
        handle.model
    except RuntimeError:
        return True
    return False


def test_a_failure_in_a_later_round_still_closes_every_handle(tiny_model_dir, tiny_prompts):
    load = CountingLoader(tiny_model_dir, "torch")

    def failing(role):
        if len(load.loaded) == 3:
            raise MeasurementError("the disk went away")
        return load(role)

    with pytest.raises(MeasurementError, match="disk"):
        measure_latency_in_rounds(failing, tiny_prompts, rounds=2, warmup=0)
    assert len(load.loaded) == 3 and load.all_closed()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_checkpoint_against_a_fresh_load_of_itself_has_an_interval_containing_one(tiny_model_dir, tiny_prompts, backend):
    # Fresh loads every round: the interval carries the load-to-load spread, as the self-comparison needs.
    load = CountingLoader(tiny_model_dir, backend)
    base_run, cand_run = measure_latency_in_rounds(load, tiny_prompts * 3, rounds=4, warmup=1)
    comparison = compare_latency(base_run, cand_run, level=0.999)
    assert comparison.ratio_interval.method == "crossed-bootstrap-t"
    assert comparison.ratio_interval.low <= 1.0 <= comparison.ratio_interval.high
    assert base_run.summary.mean_new_tokens == cand_run.summary.mean_new_tokens


# ---------------------------------------------------------------- the step


def options(**latency) -> CheckOptions:
    backend, device = latency.pop("global_backend", "auto"), latency.pop("device", None)
    return CheckOptions(metrics=("latency",), backend=backend, device=device,
                        settings={"latency": LatencyOptions(**latency)})


def test_plan_builds_bbq_chat_prompts_from_the_bundled_sample(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    plan = LatencyStep().plan(tokenizer, options(prompts=5, repeats=2, backend="torch"))
    assert len(plan.prompts) == len(plan.item_ids) == 5
    assert plan.prompt_format == "chat" and plan.repeats == 2 and plan.backend == "torch"
    text = tokenizer.decode(plan.prompts[0])
    assert "Context:" in text and "Answer:" in text and "A)" in text and "C)" in text
    assert "bundled BBQ sample" in plan.source
    # Same options, same prompts: base and candidate are timed on identical inputs.
    assert LatencyStep().plan(tokenizer, options(prompts=5, backend="torch")).prompts == plan.prompts


def test_warm_up_calls_default_to_one_for_torch_on_a_cpu_and_two_for_mlx(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    assert LatencyStep().plan(tokenizer, options(prompts=2, backend="torch", device="cpu")).warmup == 1
    assert LatencyStep().plan(tokenizer, options(prompts=2, backend="torch", device="cpu", warmup=3)).warmup == 3
    assert LatencyStep().plan(tokenizer, options(prompts=2, backend="torch", device="cpu", warmup=0)).warmup == 0
    if HAS_MLX:  # MLX compiles its kernels on the first calls, on any device
        assert LatencyStep().plan(tokenizer, options(prompts=2, backend="mlx")).warmup == 2


@pytest.mark.parametrize("bad", [{"prompts": 0}, {"repeats": 0}, {"warmup": -1}, {"prompts": "8"},
                                 {"schedule": "sometimes"}, {"backend": "tpu"}])
def test_bad_latency_options_are_input_errors(tiny_model_dir, bad):
    with pytest.raises(InputError):
        LatencyStep().plan(load_tokenizer(tiny_model_dir), options(**bad))


def hide_mlx(monkeypatch):
    """Make `import mlx...` fail as it does where MLX is not installed."""
    for module in ("mlx", "mlx.core", "mlx_lm"):
        monkeypatch.setitem(sys.modules, module, None)


def test_mlx_is_the_default_where_it_has_a_gpu_and_torch_where_it_runs_on_the_cpu_only():
    if not HAS_MLX:
        pytest.skip("mlx not installed")
    from gate.runtime.registry import has_accelerator

    if has_accelerator("mlx"):
        assert choose_backend(options()) == ("mlx", ())
    else:
        backend, (finding,) = choose_backend(options())
        assert backend == "torch" and finding.code == "latency-mlx-cpu-only" and "--latency-backend mlx" in finding.message
    assert choose_backend(options(backend="mlx"))[0] == "mlx"  # forced
    assert choose_backend(options(global_backend="torch"))[0] == "torch"
    assert choose_backend(options(global_backend="torch", backend="mlx"))[0] == "mlx"


def test_without_mlx_latency_falls_back_to_torch_and_says_so(monkeypatch, tiny_model_dir):
    hide_mlx(monkeypatch)
    step = LatencyStep()
    assert step.backend(options()) == "torch"
    plan = step.plan(load_tokenizer(tiny_model_dir), options(prompts=2))
    assert plan.backend == "torch"
    (finding,) = plan.findings
    assert finding.severity is Severity.WARNING and finding.code == "latency-mlx-missing"
    assert "pip install" in finding.message


def test_asking_for_mlx_without_it_is_one_clear_error(monkeypatch, tiny_model_dir):
    hide_mlx(monkeypatch)
    with pytest.raises(BackendUnavailableError, match="pip install"):
        LatencyStep().plan(load_tokenizer(tiny_model_dir), options(backend="mlx"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("schedule", ["alternate", "sequential"])
def test_run_pair_times_both_models_and_closes_every_handle(tiny_model_dir, backend, schedule):
    step = LatencyStep()
    opts = options(prompts=3, repeats=2, warmup=1, backend=backend, schedule=schedule)
    plan = step.plan(load_tokenizer(tiny_model_dir), opts)
    loaded = []

    def load(role):
        loaded.append((role, load_model(tiny_model_dir, backend=step.backend(opts), device="cpu", dtype="float32")))
        return loaded[-1][1]

    base_run, cand_run = step.run_pair(PairContext(load), plan, NULL_REPORTER)
    # Two rounds, fresh loads in each, the load order swapped in the second.
    assert [role for role, _ in loaded] == ["base", "candidate", "candidate", "base"]
    assert base_run.loads == cand_run.loads == 2
    assert sorted({s.repeat for s in base_run.samples}) == [0, 1]
    for _, handle in loaded:
        with pytest.raises(RuntimeError, match="closed"):
            handle.model
    expected = ALTERNATING if schedule == "alternate" else SEQUENTIAL
    assert base_run.schedule == cand_run.schedule == expected
    assert len(base_run.samples) == len(cand_run.samples) == 6

    result = step.compare(base_run, cand_run, plan)
    keys = {m.key for m in result.metrics}
    assert {"latency.ratio", "latency.base_mean_s", "latency.candidate_p95_s", "latency.decode_ratio",
            "latency.base_peak_memory_bytes", "latency.candidate_prefill_tokens_per_s"} <= keys
    assert result.result.backend == backend and result.result.schedule == expected
    assert result.result.comparison.statement in {f.message for f in result.findings}


def test_a_candidate_that_fails_to_load_still_releases_the_base(tiny_model_dir):
    step = LatencyStep()
    plan = step.plan(load_tokenizer(tiny_model_dir), options(prompts=2, repeats=1, warmup=0, backend="torch"))
    loaded = []

    def load(role):
        if role == "candidate":
            raise MeasurementError("the candidate could not be loaded")
        loaded.append(load_model(tiny_model_dir, backend="torch", device="cpu", dtype="float32"))
        return loaded[-1]

    with pytest.raises(MeasurementError):
        step.run_pair(PairContext(load), plan, NULL_REPORTER)
    with pytest.raises(RuntimeError, match="closed"):
        loaded[0].model


def test_gate_check_latency_only_writes_a_report(tiny_model_dir, tmp_path):
    pytest.importorskip("gate.measurements.bias.step", reason="the orchestrator imports every model step")
    from gate.run.check import run_check
    from gate.report.document import dumps, to_document

    opts = CheckOptions(metrics=("latency",), backend="torch",
                        settings={"latency": LatencyOptions(prompts=2, repeats=2, warmup=1)})
    result = run_check(str(tiny_model_dir), str(tiny_model_dir), opts)
    (outcome,) = result.outcomes
    assert outcome.ok, outcome.error
    doc = json.loads(dumps(to_document(result)))
    latency = doc["outcomes"][0]["result"]
    assert latency["backend"] == "torch" and latency["comparison"]["base"]["summary"]["calls"] == 4

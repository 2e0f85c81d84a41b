"""Typed options per measurement, each default and bound stated once.

A measurement's options are a frozen dataclass deriving from
`MeasurementOptions`. Each field that the command line sets carries a `Flag`
(made with `option()`): its flag name, help and bounds. The CLI builds its
click options from these flags (gate/cli/check.py), so a new measurement's
options appear in `gate check` without touching the CLI; the same bounds are
checked when the dataclass is built, so a library caller gets the same
InputError the command line would give. Steps read their options
(`CheckOptions.of(PerplexityOptions)`) and never validate them again.

The built-in measurements' options live here, in a module that imports
nothing heavy, because the CLI reads them on every start; an extension may
keep its options class in its own module.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from gate.core.errors import InputError

# Bounds on numeric options: beyond them a value is a typo or an attack, not a setting.
MAX_CTX = 1 << 20
MAX_TOKENS = 1 << 30
MAX_ITEMS = 10_000_000
MAX_PROMPTS = 100_000
MAX_REPEATS = 1_000
MAX_SEEDS = 100

# The defaults, once (the measurement modules import them from here).
DEFAULT_TOLERANCE = 0.01  # sparsity: how far below a declared target still meets it
DEFAULT_CTX = 512
DEFAULT_MAX_TOKENS = 32 * DEFAULT_CTX  # 32 windows, 16,352 predictions: the default policy wants at least 20
DEFAULT_LATENCY_PROMPTS = 10  # the default policy's latency rule asks for at least 10
DEFAULT_REPEATS = 2  # rounds, each with fresh loads; even, so each model is loaded first equally often (see LatencyOptions)
DEFAULT_WARMUP = 2  # untimed calls after each load where kernels compile or a GPU warms up (MLX, CUDA)
# torch on a CPU compiles nothing: the first call after a fresh load timed like the fifth (0.79/0.77/0.70 s
# against 0.74-0.76 s over three loads of the demo model), so one untimed call is margin enough.
CPU_TORCH_WARMUP = 1
DEFAULT_MAX_NEW_TOKENS = 5  # the paper's generate call
SCHEDULES = ("auto", "alternate", "sequential")
MODES = ("letters", "generate")
DEFAULT_SEEDS = (42, 123, 456, 789, 1024)  # the paper's
# Of the candidate's BBQ asking: the time every default measurement is held to (gate.run.fit.TARGET_SECONDS), so a
# default run ends in minutes, decided or not. The base, asked once per base and cached, takes up to as long again.
DEFAULT_BUDGET_SECONDS = 300.0


@dataclass(frozen=True)
class Flag:
    """How one options field is set on the command line, and the bounds it must keep."""

    name: str | None  # "--latency-prompts", "--permute/--no-permute" for a switch; None: not on the command line
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    auto: bool = False  # the word "auto" (the command line's default) stands for None
    parse: Callable[[str], Any] | None = None  # the command line's text -> the field's value; ValueError if bad
    show_default: bool = True
    role: Literal["input", "output-dir"] | None = None  # a path read (never written over) or a directory written


def option(default: Any, flag: Flag) -> Any:
    """A dataclass field with its flag."""
    return field(default=default, metadata={"flag": flag})


def flags(options_class: type) -> list[tuple[dataclasses.Field, Flag]]:
    """The fields of an options class that carry a flag, in declaration order."""
    return [(f, f.metadata["flag"]) for f in dataclasses.fields(options_class) if "flag" in f.metadata]


def value_types(options_class: type, name: str) -> tuple[type, ...]:
    """The types a field's value may have besides None (tuple for `tuple[str, ...]`; int too where float is)."""
    hint = typing.get_type_hints(options_class)[name]
    alternatives = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    kinds = tuple(typing.get_origin(k) or k for k in alternatives if k is not type(None))
    return kinds + (int,) if float in kinds and int not in kinds else kinds


def optional(options_class: type, name: str) -> bool:
    """Whether a field may be None."""
    hint = typing.get_type_hints(options_class)[name]
    return hint is type(None) or type(None) in typing.get_args(hint)


@dataclass(frozen=True)
class MeasurementOptions:
    """Base of every measurement's options: checks each field against its flag when built."""

    def __post_init__(self) -> None:
        for f, flag in flags(type(self)):
            _check_field(getattr(self, f.name), type(self), flag, f.name)


@dataclass(frozen=True)
class NoOptions(MeasurementOptions):
    """A measurement without options."""


def _check_field(value: Any, options_class: type, flag: Flag, name: str) -> None:
    shown = flag.name.split("/")[0] if flag.name else name
    if value is None:
        if not optional(options_class, name):
            raise InputError(f"{shown} must be given")
        return
    kinds = value_types(options_class, name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InputError(f"{shown} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if flag.choices and value not in flag.choices:
        raise InputError(f"{shown} {value!r} is not one of: {', '.join(flag.choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or (flag.minimum is not None and value < flag.minimum) \
                or (flag.maximum is not None and value > flag.maximum):
            raise InputError(f"{shown} must be from {flag.minimum} to {flag.maximum}, got {value!r}")


# --- parsing the command line's text ---------------------------------------------------------


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in comma_list(text))
    except ValueError:
        raise ValueError("expected comma-separated integers") from None
    check_seeds(seeds)
    return seeds


def check_seeds(seeds: tuple[int, ...]) -> None:
    if len(seeds) > MAX_SEEDS or not all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds):
        raise ValueError(f"expected at most {MAX_SEEDS} seeds, each from 0 to 2**32-1")


def parse_budget(text: str | None, sequential: bool) -> tuple[int | None, float | None]:
    """`--bias-budget`: (items, seconds), either None for no limit; the default is a few minutes of asking."""
    if text is None:
        return (None, DEFAULT_BUDGET_SECONDS) if sequential else (None, None)
    value = str(text).strip().lower()
    try:
        if value in ("none", "all"):
            return None, None
        if value.endswith("m"):
            return None, _positive(float(value[:-1]) * 60)
        if value.endswith("s"):
            return None, _positive(float(value[:-1]))
        return int(_positive(int(value))), None
    except ValueError:
        raise InputError(f"--bias-budget {text!r}: give a number of items (2000), seconds (90s), minutes (3m) "
                         "or 'none'") from None


def _positive(value: float) -> float:
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(value)
    return value


# --- the built-in measurements' options --------------------------------------------------------


@dataclass(frozen=True)
class SparsityOptions(MeasurementOptions):
    expected: float | None = option(None, Flag(
        "--expect-sparsity", "The declared sparsity of the candidate (0.5 = 50%).", minimum=0, maximum=1))
    tolerance: float = option(DEFAULT_TOLERANCE, Flag("--sparsity-tolerance", minimum=0, maximum=1))


@dataclass(frozen=True)
class PerplexityOptions(MeasurementOptions):
    text: str | None = option(None, Flag(
        "--text", "Perplexity corpus: a text file, hf:NAME/CONFIG[:split], or the bundled WikiText-2 excerpt.",
        role="input"))
    ctx: int = option(DEFAULT_CTX, Flag("--ctx", "Perplexity window, in tokens.", minimum=16, maximum=MAX_CTX))
    max_tokens: int | None = option(None, Flag(
        "--ppl-tokens", "Perplexity token budget [default: 32 windows].", minimum=1, maximum=MAX_TOKENS))
    sequential: bool = option(True, Flag(
        "--ppl-sequential/--no-ppl-sequential", "Stop scoring perplexity windows once the policy's perplexity rules "
        "are decided (looks after 8, 16, 32... windows, Bonferroni-corrected; where the policy has a `sequential` "
        "block); --no-ppl-sequential scores every window."))


@dataclass(frozen=True)
class LatencyOptions(MeasurementOptions):
    prompts: int = option(DEFAULT_LATENCY_PROMPTS, Flag(
        "--latency-prompts", "BBQ chat prompts timed.", minimum=1, maximum=MAX_PROMPTS))
    repeats: int = option(DEFAULT_REPEATS, Flag(
        "--latency-repeats", "Rounds; each loads both models afresh and times every prompt once on each.",
        minimum=1, maximum=MAX_REPEATS))
    warmup: int | None = option(None, Flag(
        "--latency-warmup", "Untimed calls after each load; auto: 1 for torch on a CPU, 2 elsewhere (MLX compiles "
        "its kernels, GPUs warm up).", minimum=0, maximum=MAX_REPEATS, auto=True))
    schedule: str = option("auto", Flag(
        "--latency-schedule", "Alternate base and candidate (both in memory) or time one after the other.",
        choices=SCHEDULES))
    backend: str | None = option(None, Flag(
        "--latency-backend", "Runtime for latency; auto: --backend if given, else MLX (the edge runtime) where it "
        "has a GPU, else torch.", choices=("torch", "mlx"), auto=True))
    max_new_tokens: int = option(DEFAULT_MAX_NEW_TOKENS, Flag(None, minimum=1, maximum=MAX_TOKENS))


@dataclass(frozen=True)
class BiasOptions(MeasurementOptions):
    bbq: str | None = option(None, Flag(
        "--bbq", "A directory of BBQ *.jsonl(.gz) files, or hf:NAME [default: the bundled BBQ data, 6 categories, "
        "11,956 items].", role="input"))
    limit: int | None = option(None, Flag(
        "--bbq-limit", "Ask at most the first N BBQ items of the balanced order.", minimum=1, maximum=MAX_ITEMS))
    categories: tuple[str, ...] = option((), Flag("--categories", "Comma-separated BBQ categories.",
                                                  parse=comma_list))
    mode: str = option("letters", Flag("--bbq-mode", choices=MODES))
    permute: bool | None = option(None, Flag(
        "--permute/--no-permute", "Average over the three cyclic orders of the answer options [default: on in "
        "letters mode, off in generate mode (the paper's fixed order)]."))
    seeds: tuple[int, ...] = option((), Flag(
        "--seeds", "generate mode: comma-separated sampling seeds [default: 42,123,456,789,1024].",
        parse=seed_list))
    records: Path | None = option(None, Flag("--records", "Write per-item BBQ records here.", role="output-dir"))
    sequential: bool = option(True, Flag(
        "--sequential/--no-sequential", "Stop asking BBQ items once the policy's bias rules are decided (where the "
        "policy has a `sequential` block); --no-sequential asks every item."))
    budget: str | None = option(None, Flag(
        "--bias-budget", "End the BBQ asking after N candidate items, or a time of the candidate's asking (90s, 3m), "
        "decided or not (the base, unless cached, is asked as long again); 'none' for no limit "
        "[default: 5m unless --no-sequential]."))

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            check_seeds(self.seeds)
        except ValueError as exc:
            raise InputError(f"--seeds: {exc}") from None
        parse_budget(self.budget, self.sequential)

    def budget_limits(self) -> tuple[int | None, float | None]:
        """(items, seconds) of asking; None for no limit."""
        return parse_budget(self.budget, self.sequential)

"""`gate check`: parse the options, delegate to gate.run.check, render, exit once.

The options of each measurement come from the registry: every field of its
options class that carries a `Flag` becomes a click option here, with the
field's default and bounds, so a new measurement needs no change in this file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console

from gate.cli.exits import EXIT_CODES, one_line
from gate.measurements.options import Flag, MeasurementOptions, comma_list, flags, value_types
from gate.measurements.registry import Measurement, measurements


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets NaN through (every comparison with NaN is false)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail("NaN is not a number in range", param, ctx)
        return number


class AutoIntRange(click.IntRange):
    """A bounded integer, or the word "auto" (the measurement then picks the value for the runtime)."""

    def convert(self, value, param, ctx):
        if value == "auto":
            return value
        if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
            self.fail(f"{value!r} is neither 'auto' nor a whole number", param, ctx)
        return super().convert(value, param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "[auto|INTEGER]"


def _param(measurement: Measurement, field_name: str) -> str:
    return f"{measurement.name}__{field_name}"


def _click_option(measurement: Measurement, field: dataclasses.Field, flag: Flag) -> click.Option:
    """One options field as a click option: its flag, default, help and bounds."""
    kinds = value_types(measurement.options, field.name)
    kwargs: dict[str, Any] = {"help": flag.help or None, "default": field.default, "show_default": flag.show_default}
    if flag.choices:
        kwargs["type"] = click.Choice((("auto",) if flag.auto else ()) + flag.choices)
        kwargs["default"] = "auto" if flag.auto and field.default is None else field.default
    elif flag.parse is not None:
        kwargs.update(default=None, callback=_parser(flag))
    elif flag.role == "output-dir":
        kwargs["type"] = click.Path(path_type=Path, file_okay=False)
    elif float in kinds:
        kwargs["type"] = FiniteFloatRange(flag.minimum, flag.maximum)
    elif int in kinds and bool not in kinds:
        kwargs["type"] = (AutoIntRange if flag.auto else click.IntRange)(flag.minimum, flag.maximum)
        if flag.auto and field.default is None:
            kwargs["default"] = "auto"
    if kwargs["default"] is None:
        kwargs["show_default"] = False
    return click.Option([flag.name, _param(measurement, field.name)], **kwargs)


def _parser(flag: Flag) -> Callable:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        try:
            return None if value is None else flag.parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=flag.name) from None

    return convert


class CheckCommand(click.Command):
    """`gate check`, whose `--metrics` default and per-measurement options are read from the registry when it
    runs, so a measurement registered after this module was imported still gets its flags."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        names = ",".join(m.name for m in measurements())
        metrics = click.Option(["--metrics"], default=names, show_default=True,
                               help="Comma-separated measurements to run.")
        own = [_click_option(m, field, flag) for m in measurements() for field, flag in flags(m.options) if flag.name]
        at = next(i for i, p in enumerate(params) if p.name == "threads") + 1
        return params[:2] + [metrics] + params[2:at] + own + params[at:]  # after CANDIDATE and --base


def settings_from(values: dict[str, Any]) -> dict[str, MeasurementOptions]:
    """Each measurement's typed options from the parsed flags (taken out of `values`), checked once here."""
    settings = {}
    for measurement in measurements():
        given = {}
        for field, flag in flags(measurement.options):
            if not flag.name:
                continue
            value = values.pop(_param(measurement, field.name))
            if flag.auto and value == "auto":
                value = None
            if value is not None or field.default is None:
                given[field.name] = value
        settings[measurement.name] = measurement.options(**given)
    return settings


def _paths(settings: dict[str, MeasurementOptions], role: str) -> dict[str, Any]:
    """The flag and value of every option that names a path of the given role."""
    found = {}
    for measurement in measurements():
        for field, flag in flags(measurement.options):
            if flag.role == role and flag.name:
                found[flag.name] = getattr(settings[measurement.name], field.name)
    return found


@click.command(cls=CheckCommand, epilog=EXIT_CODES)
@click.argument("candidates", nargs=-1, required=True, metavar="CANDIDATE...")
@click.option("--base", required=True, help="The dense base model: a directory, an alias (mistral-7b, demo) or a hub id.")
@click.option("--policy", default="default", show_default=True, help="A shipped policy name or a YAML file.")
@click.option("--backend", type=click.Choice(["auto", "torch", "mlx", "vllm"]), default="auto", show_default=True,
              help="Runtime for perplexity and bias (and latency, except vllm: latency stays on torch or MLX).")
@click.option("--device", help="torch: cpu, cuda, cuda:1, mps; mlx: cpu, gpu; vllm: cpu or cuda (its build decides).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), help="Compute dtype.")
@click.option("--threads", type=click.IntRange(1, os.cpu_count() or 1), help="CPU threads for torch [default: torch's choice; 1 helps on a busy shared CPU].")
@click.option("--tensor-parallel-size", metavar="N", help="vllm: GPUs each model is split across, tensor-parallel [default: 1].")
@click.option("--pipeline-parallel-size", metavar="N", help="vllm: pipeline stages, across GPUs or (through Ray) nodes [default: 1].")
@click.option("--vllm-python", metavar="PYTHON", help="vllm: the python of vLLM's own environment [default: $GATE_VLLM_PYTHON, else this "
              "python if it imports vllm].")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the result as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a Markdown report.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML (one case per rule).")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as an HTML page.")
@click.option("--summary", "summary_paths", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Write the summary across candidates (a table and charts); .md, .html or .json; repeatable.")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store cached base-model results.")
@click.option("--full-budgets", is_flag=True,
              help="Measure the default budgets however long this machine takes; by default a measurement left at "
                   "its default budget whose estimate here is over 5 min is scaled down, with a warning.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no terminal report.")
def check(candidates: tuple[str, ...], base: str, **opts: Any) -> None:
    """Measure CANDIDATE against --base and decide with the policy.

    \b
    With several candidates, the base is measured once (cached) and each candidate
    is gated in turn; report paths must hold {name} (--json out/{name}.json), the
    terminal shows the summary table, and the exit code is the worst verdict's."""
    from gate.cli.render import emit_reports, emit_summary, reporter_for, say_why
    from gate.cli.sweep import check_sweep_paths, summary_targets, sweep
    from gate.report.document import to_document
    from gate.report.summary import build_summary
    from gate.run.check import run_check
    from gate.run.sweep import plan_sweep, resolve_candidates, sweep_cache_root

    settings = settings_from(opts)
    outputs = {"--json": opts["json_path"], "--markdown": opts["markdown_path"], "--junit": opts["junit_path"],
               "--html": opts["html_path"]}
    # Everything checked before any model runs: where reports go, and whether the cache can be used.
    inputs = [*candidates, base, opts["policy"], *_paths(settings, "input").values()]
    protected = [Path(p) for p in inputs if p and _exists(p)]
    directories = _paths(settings, "output-dir")
    plan = plan_sweep(candidates, {**outputs, **directories})
    targets = summary_targets("--summary", opts["summary_paths"])
    check_sweep_paths(plan, targets, list(directories), protected)
    quiet = opts["quiet"]
    reporter = reporter_for(Console(stderr=True), quiet)
    if len(candidates) == 1:
        result = run_check(candidates[0], base, _options(opts, settings, not opts["no_cache"]), reporter,
                           outputs={**outputs, **directories})
        emit_reports(result, outputs, quiet=quiet)
        if quiet:
            say_why(to_document(result))
        if targets:  # a summary of one: the same table a sweep or a CI matrix's merge step writes
            emit_summary(build_summary([to_document(result)], [opts["json_path"] and str(opts["json_path"])]),
                         targets, quiet=True, step_summary=False)  # the report went there already
        sys.exit(int(result.exit_code))
    resolve_candidates(candidates, reporter)
    # --no-cache with several candidates: a temporary cache keeps the base measured once, then goes.
    with sweep_cache_root(opts["no_cache"], several=True) as temporary:
        summary = sweep(plan, base, _options(opts, settings, temporary is not None or not opts["no_cache"]),
                        reporter, quiet)
    emit_summary(summary, targets, quiet)
    sys.exit(summary["exit_code"])


def _options(opts: dict[str, Any], settings: dict[str, MeasurementOptions], cache: bool):
    from gate.measurements.check_options import CheckOptions

    metrics = comma_list(opts["metrics"])
    return CheckOptions(metrics=metrics, policy=opts["policy"], backend=opts["backend"], device=opts["device"],
                        dtype=opts["dtype"], threads=opts["threads"], cache=cache and _cache_usable(metrics),
                        fit_to_machine=not opts["full_budgets"],
                        settings=settings,
                        runtime=_runtime_settings(opts))


def _runtime_settings(opts: dict[str, Any]) -> dict[str, Any]:
    """vLLM's settings, checked now: a bad value, or no vLLM to run, is one line and exit 2 before anything runs."""
    from gate.runtime.vllm_backend import require_vllm, settings_from

    runtime = {"vllm_python": opts["vllm_python"], "tensor_parallel_size": opts["tensor_parallel_size"],
               "pipeline_parallel_size": opts["pipeline_parallel_size"]}
    settings = settings_from(runtime)
    if opts["backend"] == "vllm":
        require_vllm(settings)
    return runtime


def _exists(path: str) -> bool:
    """Path.exists, False for what cannot be a path at all (too long, a NUL byte)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def _cache_usable(metrics: tuple[str, ...]) -> bool:
    """False, with a one-line warning, when model runs would need a cache directory that cannot be used."""
    from gate.run.cache import cache_dir_problem

    kinds = {m.name: m.kind for m in measurements()}
    if all(kinds.get(name) == "checkpoint" for name in metrics):
        return True  # weights-only checks never touch the cache
    problem = cache_dir_problem()
    if problem:
        click.echo(f"gate: warning: {one_line(problem)}; continuing without the cache", err=True)
    return problem is None

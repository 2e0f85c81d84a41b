"""The `gate` command line: parses options, delegates, renders, exits once."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import click
from rich.console import Console

from gate import __version__
from gate.core.errors import ExitCode, GateError, InputError

EXIT_CODES = """\b
Exit codes:
  0  PASS: every rule of the policy holds
  1  FAIL: a rule failed, a measurement broke, or a blocking finding (NaN weights, unmet declared sparsity)
  2  usage or input error (bad option, missing or corrupt checkpoint, bad policy or data)
  3  INCONCLUSIVE: the evidence is too thin to pass (too few items, interval too wide, metric missing)
  4  internal error (a bug in gate; please report it)
  130/143  stopped by SIGINT (Ctrl-C) / SIGTERM: no report written"""

# Bounds on numeric options: beyond them a value is a typo or an attack, not a setting.
MAX_CTX = 1 << 20
MAX_TOKENS = 1 << 30
MAX_ITEMS = 10_000_000
MAX_PROMPTS = 100_000
MAX_REPEATS = 1_000
MAX_SEEDS = 100
MAX_MESSAGE = 2_000  # characters of an error line


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _int_csv(value: str | None) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in _csv(value))
    except ValueError:
        raise click.BadParameter("expected comma-separated integers", param_hint="--seeds") from None
    if len(seeds) > MAX_SEEDS or not all(0 <= seed < 2**32 for seed in seeds):
        raise click.BadParameter(f"expected at most {MAX_SEEDS} seeds, each from 0 to 2**32-1", param_hint="--seeds")
    return seeds


def one_line(message: str) -> str:
    """A message as one printable line: names from inputs may hold newlines, control characters or surrogates."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in message)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


class _Terminated(BaseException):
    """SIGTERM, raised where the main thread is; like KeyboardInterrupt, no `except Exception` swallows it."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets NaN through (every comparison with NaN is false)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail("NaN is not a number in range", param, ctx)
        return number


class GateGroup(click.Group):
    """Translates domain errors into one line and an exit code, in one place."""

    def invoke(self, ctx: click.Context):
        # SIGTERM stops a run as Ctrl-C does: reports are written atomically, so none is left half-written.
        outermost = ctx.parent is None and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if outermost else None
        try:
            return super().invoke(ctx)
        except GateError as exc:
            click.echo(f"gate: error: {one_line(str(exc))}", err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("gate: stopped by SIGINT (Ctrl-C); no report written; the base's results measured so far "
                       "stay cached (unless --no-cache): rerun to resume", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except _Terminated:
            click.echo("gate: stopped by SIGTERM; no report written; the base's results measured so far "
                       "stay cached (unless --no-cache): rerun to resume", err=True)
            ctx.exit(int(ExitCode.TERMINATED))
        except Exception as exc:  # a bug: say so plainly; the traceback only on request
            if os.environ.get("GATE_DEBUG"):
                traceback.print_exc()
            click.echo(one_line(f"gate: internal error: {type(exc).__name__}: {exc} (set GATE_DEBUG=1 for the traceback)"),
                       err=True)
            ctx.exit(int(ExitCode.INTERNAL))
        finally:
            if outermost:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=GateGroup, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="gate")
def main() -> None:
    """Validate a pruned or quantized LLM checkpoint against its dense base model."""


@main.command(epilog=EXIT_CODES)
@click.argument("candidate")
@click.option("--base", required=True, help="The dense base model: a directory, an alias (mistral-7b, demo) or a hub id.")
@click.option("--metrics", default="sparsity,size,latency,perplexity,bias", show_default=True,
              help="Comma-separated measurements to run.")
@click.option("--policy", default="default", show_default=True, help="A shipped policy name or a YAML file.")
@click.option("--expect-sparsity", type=FiniteFloatRange(0, 1), help="The declared sparsity of the candidate (0.5 = 50%).")
@click.option("--sparsity-tolerance", type=FiniteFloatRange(0, 1), default=0.01, show_default=True)
@click.option("--backend", type=click.Choice(["auto", "torch", "mlx", "vllm"]), default="auto", show_default=True,
              help="Runtime for perplexity and bias (and latency, except vllm: latency stays on torch or MLX).")
@click.option("--device", help="torch: cpu, cuda, cuda:1, mps; mlx: cpu, gpu; vllm: cpu or cuda (its build decides).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), help="Compute dtype.")
@click.option("--threads", type=click.IntRange(1, os.cpu_count() or 1), help="CPU threads for torch [default: torch's choice; 1 helps on a busy shared CPU].")
@click.option("--tensor-parallel-size", help="vllm: GPUs each model is split across, tensor-parallel [default: 1].")
@click.option("--pipeline-parallel-size", help="vllm: pipeline stages, across GPUs or (through Ray) nodes [default: 1].")
@click.option("--vllm-python", help="vllm: the python of vLLM's own environment [default: $GATE_VLLM_PYTHON, else this "
              "python if it imports vllm].")
@click.option("--text", help="Perplexity corpus: a text file, hf:NAME/CONFIG[:split], or the bundled WikiText-2 excerpt.")
@click.option("--ctx", type=click.IntRange(16, MAX_CTX), default=512, show_default=True, help="Perplexity window, in tokens.")
@click.option("--ppl-tokens", type=click.IntRange(1, MAX_TOKENS), help="Perplexity token budget [default: 32 windows].")
@click.option("--bbq", help="A directory of BBQ *.jsonl(.gz) files, or hf:NAME [default: the bundled BBQ data, "
              "6 categories, 11,956 items].")
@click.option("--bbq-limit", type=click.IntRange(1, MAX_ITEMS), help="Ask at most the first N BBQ items of the balanced order.")
@click.option("--categories", help="Comma-separated BBQ categories.")
@click.option("--bbq-mode", type=click.Choice(["letters", "generate"]), default="letters", show_default=True)
@click.option("--permute/--no-permute", default=None,
              help="Average over the three cyclic orders of the answer options [default: on in letters mode, "
                   "off in generate mode (the paper's fixed order)].")
@click.option("--seeds", help="generate mode: comma-separated sampling seeds [default: 42,123,456,789,1024].")
@click.option("--records", type=click.Path(path_type=Path, file_okay=False), help="Write per-item BBQ records here.")
@click.option("--sequential/--no-sequential", default=True, show_default=True,
              help="Stop asking BBQ items once the policy's bias rules are decided (where the policy has a "
                   "`sequential` block); --no-sequential asks every item.")
@click.option("--bias-budget", help="End the BBQ asking after N candidate items, or a time (90s, 3m), decided or "
              "not; 'none' for no limit [default: 3m unless --no-sequential].")
@click.option("--latency-prompts", type=click.IntRange(1, MAX_PROMPTS), default=10, show_default=True, help="BBQ chat prompts timed.")
@click.option("--latency-repeats", type=click.IntRange(1, MAX_REPEATS), default=4, show_default=True,
              help="Rounds; each loads both models afresh and times every prompt once on each.")
@click.option("--latency-warmup", type=click.IntRange(0, MAX_REPEATS), default=2, show_default=True, help="Untimed calls first.")
@click.option("--latency-backend", type=click.Choice(["auto", "torch", "mlx"]), default="auto", show_default=True,
              help="Runtime for latency; auto: --backend if given, else MLX (the edge runtime) where it has a GPU, "
                   "else torch.")
@click.option("--latency-schedule", type=click.Choice(["auto", "alternate", "sequential"]), default="auto",
              show_default=True, help="Alternate base and candidate (both in memory) or time one after the other.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the result as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a Markdown report.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML (one case per rule).")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as an HTML page.")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store cached base-model results.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no terminal report.")
def check(candidate: str, base: str, **opts) -> None:
    """Measure CANDIDATE against --base and decide with the policy."""
    from gate.run.check import CheckOptions, run_check
    from gate.cli.render import emit_reports, reporter_for
    from gate.report.document import to_document
    from gate.report.write import check_output_paths, check_records_dir

    outputs = {"--json": opts["json_path"], "--markdown": opts["markdown_path"], "--junit": opts["junit_path"],
               "--html": opts["html_path"]}
    # Everything checked before any model runs: where reports go, and whether the cache can be used.
    protected = [Path(p) for p in (candidate, base, opts["text"], opts["bbq"], opts["policy"]) if p and _exists(p)]
    check_output_paths(outputs, protected)
    check_records_dir("--records", opts["records"], protected)
    use_cache = not opts["no_cache"] and _cache_usable(_csv(opts["metrics"]))
    options = CheckOptions(
        metrics=_csv(opts["metrics"]), policy=opts["policy"], expect_sparsity=opts["expect_sparsity"],
        sparsity_tolerance=opts["sparsity_tolerance"], backend=opts["backend"], device=opts["device"], dtype=opts["dtype"],
        threads=opts["threads"],
        extra={
            "perplexity": {"text": opts["text"], "ctx": opts["ctx"], "max_tokens": opts["ppl_tokens"]},
            "bias": {"bbq": opts["bbq"], "limit": opts["bbq_limit"], "categories": _csv(opts["categories"]),
                     "mode": opts["bbq_mode"], "permute": opts["permute"], "seeds": _int_csv(opts["seeds"]),
                     "records": str(opts["records"]) if opts["records"] else None,
                     "sequential": opts["sequential"], "budget": opts["bias_budget"]},
            "latency": {"prompts": opts["latency_prompts"], "repeats": opts["latency_repeats"],
                        "warmup": opts["latency_warmup"], "schedule": opts["latency_schedule"],
                        "backend": None if opts["latency_backend"] == "auto" else opts["latency_backend"]},
            "cache": use_cache,
            "runtime": _runtime_settings(opts),
        },
    )
    console = Console(stderr=True)
    result = run_check(candidate, base, options, reporter_for(console, opts["quiet"]),
                       outputs={**outputs, "--records": opts["records"]})
    emit_reports(result, outputs, quiet=opts["quiet"])
    if opts["quiet"]:
        _say_why(to_document(result))
    sys.exit(int(result.exit_code))


def _runtime_settings(opts: dict) -> dict:
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
    from gate.measurements.base import CHECKPOINT_STEPS

    if all(m in CHECKPOINT_STEPS for m in metrics):
        return True  # weights-only checks never touch the cache
    problem = cache_dir_problem()
    if problem:
        click.echo(f"gate: warning: {one_line(problem)}; continuing without the cache", err=True)
    return problem is None


def _say_why(doc: dict) -> None:
    """--quiet still says, in one line on stderr, why a verdict is not PASS."""
    verdict = doc.get("verdict") or {}
    status = verdict.get("status", "INCONCLUSIVE")
    if status == "PASS":
        return
    errors = [f"{o['name']} failed: {o['error']}" for o in doc.get("outcomes", []) if o.get("error")]
    reasons = errors + list(verdict.get("reasons") or [])
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    click.echo(one_line(f"gate: {status}: {reasons[0] if reasons else 'see the report'}{more}"), err=True)


@main.command()
@click.argument("result_json", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No terminal report.")
def report(result_json: Path, json_path, markdown_path, junit_path, html_path, quiet: bool) -> None:
    """Re-render a saved result (from --json) without running any model; exits with its verdict's code."""
    from gate.cli.render import emit_document
    from gate.report.document import exit_code_of, load_document
    from gate.report.write import check_output_paths

    outputs = {"--json": json_path, "--markdown": markdown_path, "--junit": junit_path, "--html": html_path}
    check_output_paths(outputs, [result_json])
    doc = load_document(result_json)
    _render_or_refuse(doc, result_json)
    emit_document(doc, outputs, quiet=quiet)
    if quiet:
        _say_why(doc)
    sys.exit(int(exit_code_of(doc)))  # from the verdict shown, never the stored exit_code


def _render_or_refuse(doc: dict, path: Path) -> None:
    """Render every format in memory first: a document the formats cannot read is bad input, and no
    report file gets written from it."""
    import io

    from gate.report.html import HtmlFormat
    from gate.report.junit import JUnitFormat
    from gate.report.markdown import MarkdownFormat
    from gate.report.terminal import TerminalFormat

    try:
        for fmt in (MarkdownFormat(), JUnitFormat(), HtmlFormat()):
            fmt.render(doc)
        Console(file=io.StringIO(), width=120).print(TerminalFormat().render(doc))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{path} does not follow schema gate.check/v1 (a format cannot read it: "
                         f"{type(exc).__name__})") from None


@main.group(cls=GateGroup)
def policy() -> None:
    """Show and validate policies."""


@policy.command("list")
def policy_list() -> None:
    """List the shipped policies."""
    from gate.policy.loader import list_policies, load_policy

    for name in list_policies():
        description = " ".join(load_policy(name).description.split())
        click.echo(f"{name:10} {description}")


@policy.command("show")
@click.argument("name")
def policy_show(name: str) -> None:
    """Print a policy (a shipped name or a file), with its comments, after validating it."""
    from gate.policy.loader import load_policy, read_policy_text

    load_policy(name)
    click.echo(read_policy_text(name)[0], nl=False)


@policy.command("validate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def policy_validate(file: Path) -> None:
    """Check a policy file against the schema."""
    from gate.policy.loader import load_policy

    loaded = load_policy(str(file))
    click.echo(f"{file}: valid policy {loaded.name!r} with {len(loaded.rules)} rules")


@main.command()
@click.argument("variants", nargs=-1)
def demo(variants: tuple[str, ...]) -> None:
    """Build (once) the embedded SmolLM2-135M demo model and its pruned variants; print their paths."""
    from gate.demo.build import DEMO_VARIANTS, ensure_demo_checkpoint
    from gate.cli.render import reporter_for

    reporter = reporter_for(Console(stderr=True), quiet=False)
    for variant in variants or DEMO_VARIANTS:
        click.echo(f"{variant:12} {ensure_demo_checkpoint(variant, reporter=reporter)}")


@main.group(cls=GateGroup)
def cache() -> None:
    """The cache of base-model results (in $GATE_CACHE_DIR, else ~/.cache/gate)."""


@cache.command("info")
def cache_info() -> None:
    """Where the cache is and how much it holds."""
    from gate.run.cache import BaseRunCache

    store = BaseRunCache()
    entries, size = store.size()
    click.echo(f"{store.root}: {entries} base runs, {size / 2**20:.1f} MiB")


@cache.command("clear")
def cache_clear() -> None:
    """Forget every cached base run (the demo model builds are kept)."""
    from gate.run.cache import BaseRunCache

    store = BaseRunCache()
    click.echo(f"removed {store.clear()} base runs from {store.root}")


@cache.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def cache_export(file: Path) -> None:
    """Write every cached base run to FILE (gzip JSON), for `gate cache import` on another machine."""
    from gate.report.write import check_output_paths
    from gate.run.cache import BaseRunCache
    from gate.run.cache_transfer import export_runs

    store = BaseRunCache()
    check_output_paths({"FILE": file}, [store.root])
    click.echo(f"exported {export_runs(store, file)} base runs from {store.root} to {file}")


@cache.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replace", is_flag=True, help="Take the bundle's run where the cache holds a different one under the same key.")
def cache_import(file: Path, replace: bool) -> None:
    """Add the base runs of FILE (from `gate cache export`) to this machine's cache; checks all of it first."""
    from gate.run.cache import BaseRunCache
    from gate.run.cache_transfer import import_runs

    store = BaseRunCache()
    summary = import_runs(store, file, replace=replace)
    click.echo(f"imported {summary.added} base runs into {store.root} ({summary.unchanged} already held"
               + (f", {summary.replaced} replaced" if summary.replaced else "") + ")")
    if summary.bundle_version != __version__:
        click.echo(f"gate: warning: the bundle was written by gate {one_line(summary.bundle_version)}; "
                   f"this is gate {__version__}, whose runs are keyed by version: its runs will not be used", err=True)


@main.command()
def models() -> None:
    """List the model aliases that --base and CANDIDATE accept."""
    from gate.inputs.refs import aliases

    for alias, target in aliases().items():
        click.echo(f"{alias:18} {target}")

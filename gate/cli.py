"""The `gate` command line: parses options, delegates, renders, exits once."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console

from gate import __version__
from gate.errors import ExitCode, GateError

EXIT_CODES = """\b
Exit codes:
  0  PASS: every rule of the policy holds
  1  FAIL: a rule failed, a measurement broke, or a blocking finding (NaN weights, unmet declared sparsity)
  2  usage or input error (bad option, missing or corrupt checkpoint, bad policy or data)
  3  INCONCLUSIVE: the evidence is too thin to pass (too few items, interval too wide, metric missing)
  4  internal error (a bug in gate; please report it)"""


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _int_csv(value: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(value))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint="--seeds") from None


class GateGroup(click.Group):
    """Translates domain errors into one line and an exit code, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GateError as exc:
            click.echo(f"gate: error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("gate: interrupted", err=True)
            ctx.exit(int(ExitCode.INTERNAL))
        except Exception as exc:  # a bug: say so plainly; the traceback only on request
            if os.environ.get("GATE_DEBUG"):
                traceback.print_exc()
            click.echo(f"gate: internal error: {type(exc).__name__}: {exc} (set GATE_DEBUG=1 for the traceback)", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


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
@click.option("--expect-sparsity", type=click.FloatRange(0, 1), help="The declared sparsity of the candidate (0.5 = 50%).")
@click.option("--sparsity-tolerance", type=click.FloatRange(0, 1), default=0.01, show_default=True)
@click.option("--backend", type=click.Choice(["auto", "torch", "mlx"]), default="auto", show_default=True)
@click.option("--device", help="torch: cpu, cuda, cuda:1, mps; mlx: cpu, gpu.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), help="Compute dtype.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch [default: torch's choice; 1 helps on a busy shared CPU].")
@click.option("--text", help="Perplexity corpus: a text file, hf:NAME/CONFIG[:split], or the bundled WikiText-2 excerpt.")
@click.option("--ctx", type=click.IntRange(16), default=512, show_default=True, help="Perplexity window, in tokens.")
@click.option("--ppl-tokens", type=click.IntRange(1), help="Perplexity token budget [default: 32 windows].")
@click.option("--bbq", help="A directory of BBQ *.jsonl(.gz) files, or hf:NAME [default: the bundled BBQ data, "
              "6 categories, 11,956 items].")
@click.option("--bbq-limit", type=click.IntRange(1), help="Ask at most the first N BBQ items of the balanced order.")
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
              "not; 'none' for no limit [default: 3m with sequential looks, none without].")
@click.option("--latency-prompts", type=click.IntRange(1), default=10, show_default=True, help="BBQ chat prompts timed.")
@click.option("--latency-repeats", type=click.IntRange(1), default=4, show_default=True,
              help="Rounds; each loads both models afresh and times every prompt once on each.")
@click.option("--latency-warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed calls first.")
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
    from gate.check import CheckOptions, run_check
    from gate.cli_render import emit_reports, reporter_for
    from gate.outputs import check_output_paths

    outputs = {"--json": opts["json_path"], "--markdown": opts["markdown_path"], "--junit": opts["junit_path"],
               "--html": opts["html_path"]}
    protected = [Path(p) for p in (candidate, base, opts["text"], opts["bbq"], opts["policy"]) if p and Path(p).exists()]
    check_output_paths(outputs, protected)
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
            "cache": not opts["no_cache"],
        },
    )
    console = Console(stderr=True)
    result = run_check(candidate, base, options, reporter_for(console, opts["quiet"]))
    emit_reports(result, outputs, quiet=opts["quiet"])
    sys.exit(int(result.exit_code))


@main.command()
@click.argument("result_json", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No terminal report.")
def report(result_json: Path, json_path, markdown_path, junit_path, html_path, quiet: bool) -> None:
    """Re-render a saved result (from --json) without running any model; exits with its verdict's code."""
    from gate.cli_render import emit_document
    from gate.document import load_document
    from gate.outputs import check_output_paths

    outputs = {"--json": json_path, "--markdown": markdown_path, "--junit": junit_path, "--html": html_path}
    check_output_paths(outputs, [result_json])
    doc = load_document(result_json)
    emit_document(doc, outputs, quiet=quiet)
    sys.exit(int(doc.get("exit_code", ExitCode.INTERNAL)))


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
    from gate.demo_model import DEMO_VARIANTS, ensure_demo_checkpoint
    from gate.cli_render import reporter_for

    reporter = reporter_for(Console(stderr=True), quiet=False)
    for variant in variants or DEMO_VARIANTS:
        click.echo(f"{variant:12} {ensure_demo_checkpoint(variant, reporter=reporter)}")


@main.group(cls=GateGroup)
def cache() -> None:
    """The cache of base-model results (in $GATE_CACHE_DIR, else ~/.cache/gate)."""


@cache.command("info")
def cache_info() -> None:
    """Where the cache is and how much it holds."""
    from gate.cache import BaseRunCache

    store = BaseRunCache()
    entries, size = store.size()
    click.echo(f"{store.root}: {entries} base runs, {size / 2**20:.1f} MiB")


@cache.command("clear")
def cache_clear() -> None:
    """Forget every cached base run (the demo model builds are kept)."""
    from gate.cache import BaseRunCache

    store = BaseRunCache()
    click.echo(f"removed {store.clear()} base runs from {store.root}")


@main.command()
def models() -> None:
    """List the model aliases that --base and CANDIDATE accept."""
    from gate.refs import aliases

    for alias, target in aliases().items():
        click.echo(f"{alias:18} {target}")

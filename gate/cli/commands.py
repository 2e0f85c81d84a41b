"""The commands besides `gate check`: report, policy, demo, cache, models."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from gate import __version__
from gate.cli.exits import GateGroup, one_line
from gate.core.errors import InputError


@click.command()
@click.argument("result_json", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False),
                metavar="RESULT_JSON...")
@click.option("--summary", "summarize", is_flag=True,
              help="Merge several results (a CI matrix's jobs) into one summary across candidates; --json, "
                   "--markdown and --html then write the summary.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No terminal report.")
def report(result_json: tuple[Path, ...], summarize: bool, json_path, markdown_path, junit_path, html_path,
           quiet: bool) -> None:
    """Re-render a saved result (from --json) without running any model; exits with its verdict's code.

    With --summary, merge several saved results into one summary; exits with the worst verdict's code."""
    from gate.cli.render import emit_document, say_why
    from gate.report.document import exit_code_of, load_document
    from gate.report.write import check_output_paths

    outputs = {"--json": json_path, "--markdown": markdown_path, "--junit": junit_path, "--html": html_path}
    if summarize:
        return _report_summary(list(result_json), outputs, quiet)
    if len(result_json) > 1:
        raise InputError(f"{len(result_json)} result files given: re-render one, or merge several with --summary")
    check_output_paths(outputs, [result_json[0]])
    doc = load_document(result_json[0])
    _render_or_refuse(doc, result_json[0])
    emit_document(doc, outputs, quiet=quiet)
    if quiet:
        say_why(doc)
    sys.exit(int(exit_code_of(doc)))  # from the verdict shown, never the stored exit_code


def _report_summary(paths: list[Path], outputs: dict[str, Path | None], quiet: bool) -> None:
    """`gate report --summary`: the merge step of a CI matrix. Every result is checked against the schema before
    anything is written; the summary reads only what the check guarantees, and checks the type of everything else."""
    from gate.cli.render import emit_summary
    from gate.report.summary import build_summary, load_documents
    from gate.report.write import check_output_paths

    if outputs["--junit"]:
        raise InputError("--junit has no summary form; with --summary use --json, --markdown or --html")
    check_output_paths(outputs, paths)
    summary = build_summary(load_documents(paths), [str(path) for path in paths])
    targets = [(kind, outputs[option]) for kind, option in (("json", "--json"), ("markdown", "--markdown"),
                                                              ("html", "--html")) if outputs[option]]
    emit_summary(summary, targets, quiet)
    sys.exit(summary["exit_code"])


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


@click.group(cls=GateGroup)
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


@click.command()
@click.argument("variants", nargs=-1)
def demo(variants: tuple[str, ...]) -> None:
    """Build (once) the embedded SmolLM2-135M demo model, its pruned variants and its MLX 4-bit form; print their paths."""
    from gate.demo.build import DEMO_VARIANTS, GGUF_VARIANT, QUANTIZED_VARIANTS, ensure_demo_checkpoint
    from gate.cli.render import reporter_for
    from gate.core.errors import BackendUnavailableError

    reporter = reporter_for(Console(stderr=True), quiet=False)
    for variant in variants or DEMO_VARIANTS + QUANTIZED_VARIANTS + (GGUF_VARIANT,):
        try:
            click.echo(f"{variant:12} {ensure_demo_checkpoint(variant, reporter=reporter)}")
        except BackendUnavailableError as error:
            if variants:  # asked for by name: the missing runtime is an error
                raise
            click.echo(f"{variant:12} not built: {error}")


@click.group(cls=GateGroup)
def cache() -> None:
    """The cache of base-model results and dense copies of quantized models (in $GATE_CACHE_DIR, else ~/.cache/gate)."""


@cache.command("info")
def cache_info() -> None:
    """Where the cache is and how much it holds."""
    from gate.run.cache import BaseRunCache, cache_root
    from gate.runtime.dequantize import dense_copies_root, dense_copies_size

    store = BaseRunCache()
    entries, size = store.size()
    click.echo(f"{store.root}: {entries} base runs, {size / 2**20:.1f} MiB")
    root = cache_root()
    copies, copy_bytes = dense_copies_size(root)
    click.echo(f"{dense_copies_root(root)}: {copies} dense copies of quantized models, "
               f"{copy_bytes / 2**20:.1f} MiB")


@cache.command("clear")
def cache_clear() -> None:
    """Forget every cached base run and dense copy (the demo model builds are kept)."""
    from gate.run.cache import BaseRunCache, cache_root
    from gate.runtime.dequantize import clear_dense_copies, dense_copies_root

    store = BaseRunCache()
    click.echo(f"removed {store.clear()} base runs from {store.root}")
    root = cache_root()
    click.echo(f"removed {clear_dense_copies(root)} dense copies of quantized models from {dense_copies_root(root)}")


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


@click.command()
def models() -> None:
    """List the model aliases that --base and CANDIDATE accept."""
    from gate.inputs.refs import aliases

    for alias, target in aliases().items():
        click.echo(f"{alias:18} {target}")

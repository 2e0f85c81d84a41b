"""Planning a sweep of several candidates: report paths from {name}, the temporary cache under --no-cache,
and candidates that cannot be gated becoming rows of the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.core.errors import ExitCode, InputError, ModelNotFoundError
from gate.report.summary import Unchecked, build_summary
from gate.run.sweep import plan_sweep, report_name, run_sweep, sweep_cache_root
from tests.report_docs import wanda50


def test_report_names_are_file_names(tmp_path):
    model = tmp_path / "pruned" / "wanda-50"
    model.mkdir(parents=True)
    assert report_name(str(model)) == "wanda-50" and report_name(str(model) + "/") == "wanda-50"
    assert report_name("demo:wanda50") == "demo-wanda50"
    assert report_name("org/model@v1.2") == "org-model@v1.2"
    assert report_name("../evil\n/name") == "evil-name"
    assert report_name("...") == "candidate" and report_name("a\x00b") == "a-b"


def test_one_candidate_takes_its_paths_as_written():
    outputs = {"--json": Path("out/{name}.json"), "--html": None}
    plan = plan_sweep(["demo:wanda50"], outputs)
    assert plan.outputs == (outputs,)


def test_several_candidates_fill_name_into_every_path():
    plan = plan_sweep(["demo:wanda50", "demo:nm24"], {"--json": Path("out/{name}.json"),
                                                      "--markdown": Path("md/{name}/r.md"), "--html": None})
    assert plan.outputs == ({"--json": Path("out/demo-wanda50.json"), "--markdown": Path("md/demo-wanda50/r.md"),
                             "--html": None},
                            {"--json": Path("out/demo-nm24.json"), "--markdown": Path("md/demo-nm24/r.md"),
                             "--html": None})


def test_several_candidates_refuse_a_path_without_name_and_clashing_names(tmp_path):
    with pytest.raises(InputError, match=r"--json out\.json: with several candidates each report path needs \{name\}, "
                                         r"e\.g\. --json out/\{name\}\.json"):
        plan_sweep(["a", "b"], {"--json": Path("out.json"), "--html": None})
    (tmp_path / "x" / "m").mkdir(parents=True)
    (tmp_path / "y" / "m").mkdir(parents=True)
    with pytest.raises(InputError, match="would write the same reports"):
        plan_sweep([str(tmp_path / "x" / "m"), str(tmp_path / "y" / "m")], {"--json": Path("{name}.json")})
    with pytest.raises(InputError, match="would write the same reports"):
        plan_sweep(["demo:nm24", "demo:nm24"], {})
    with pytest.raises(InputError, match="no candidate"):
        plan_sweep([], {})


def test_no_cache_sweeps_keep_the_base_in_a_temporary_cache(tmp_path, monkeypatch):
    from gate.demo.build import default_cache_root
    from gate.run.cache import BaseRunCache, cache_root

    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "user-cache"))
    with sweep_cache_root(no_cache=False, several=True) as root:
        assert root is None and cache_root() == tmp_path / "user-cache"
    with sweep_cache_root(no_cache=True, several=False) as root:
        assert root is None  # one candidate: --no-cache means what it always meant
    with sweep_cache_root(no_cache=True, several=True) as root:
        assert root.is_dir() and cache_root() == root and BaseRunCache().root == root / "base-runs"
        assert default_cache_root() == tmp_path / "user-cache"  # the demo models are still found where they are
    assert not root.exists() and cache_root() == tmp_path / "user-cache"


def test_a_candidate_that_cannot_be_gated_is_a_row_and_the_sweep_goes_on():
    seen = []

    def gate_one(candidate: str, outputs: dict) -> dict:
        seen.append((candidate, outputs["--json"]))
        if candidate == "missing":
            raise ModelNotFoundError("no such file or directory: missing")
        if candidate == "bug":
            raise ZeroDivisionError("division by zero")
        doc = wanda50()
        doc["candidate"]["spec"] = candidate
        return doc

    plan = plan_sweep(["a", "missing", "bug", "b"], {"--json": Path("{name}.json")})
    entries = run_sweep(plan, "demo", gate_one)
    assert [c for c, _ in seen] == ["a", "missing", "bug", "b"] and seen[0][1] == Path("a.json")
    assert entries[1] == Unchecked("missing", "demo", "no such file or directory: missing", ExitCode.USAGE)
    assert entries[2].exit_code == ExitCode.INTERNAL and "ZeroDivisionError" in entries[2].message
    summary = build_summary(entries)
    assert [row["verdict"] for row in summary["rows"]] == ["FAIL", "ERROR", "ERROR", "FAIL"]
    assert summary["exit_code"] == ExitCode.INTERNAL


def test_candidates_are_resolved_as_run_check_resolves_them(tmp_path):
    from gate.run.sweep import resolve_candidates

    model = tmp_path / "m"
    model.mkdir()
    resolve_candidates([str(model)])
    with pytest.raises(ModelNotFoundError, match="nothing-here"):
        resolve_candidates([str(model), str(tmp_path / "nothing-here")])
    with pytest.raises(InputError) as raised:  # a demo alias reaches the demo builder, which knows its variants
        resolve_candidates(["demo:no-such-variant"])
    assert "nothing here builds demo models" not in str(raised.value)

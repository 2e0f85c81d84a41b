"""The `gate` command on the weights-only audit: exit codes, one-line errors, reports."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fixtures.checkpoints import build_checkpoint, put_nan, truncate
from gate.cli.main import main


def gate(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def pair(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand", "magnitude")
    return cand.path, base.path


def audit(cand, base, *extra):
    return gate("check", cand, "--base", base, "--metrics", "sparsity,size", "--policy", "audit", *extra)


def assert_one_line_error(code, err, expected_code, fragment):
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error: "), err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_audit_passes_and_reports(pair, tmp_path):
    cand, base = pair
    out_json, out_md, out_xml = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.xml"
    code, out, err = audit(cand, base, "--expect-sparsity", "0.5", "--json", out_json, "--markdown", out_md, "--junit", out_xml)
    assert code == 0, out + err
    assert "PASS" in out and "Sparsity of the prunable weights" in out and "Size on disk" in out
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "gate.check/v1" and doc["exit_code"] == 0
    sparsity = next(o for o in doc["outcomes"] if o["name"] == "sparsity")["result"]
    assert sparsity["candidate"]["overall"]["sparsity"] == 0.5
    assert sparsity["base"]["overall"]["zeros"] == 0
    assert "## gate: ✅ PASS" in out_md.read_text()
    assert '<testcase classname="gate.policy.audit" name="size"' in out_xml.read_text()


def test_report_rerenders_a_saved_result(pair, tmp_path):
    cand, base = pair
    saved = tmp_path / "r.json"
    audit(cand, base, "--json", saved, "--quiet")
    code, out, _ = gate("report", saved, "--markdown", tmp_path / "again.md")
    assert code == 0
    assert "PASS" in out and "Size on disk" in out
    assert "## gate: ✅ PASS" in (tmp_path / "again.md").read_text()


def test_html_report_is_one_page_with_the_verdict_and_escaped_names(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand<&>", "magnitude")
    page = tmp_path / "r.html"
    code, out, err = audit(cand.path, base.path, "--html", page, "--quiet")
    assert code == 0, err
    assert out == ""  # --quiet: the page is written, nothing printed
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<title>gate: PASS" in text and "cand&lt;&amp;&gt;" in text
    assert "Sparsity of the prunable weights" in text and "Size on disk" in text
    assert "<script" not in text
    code, _, err = gate("report", tmp_path / "missing.json", "--html", page)
    assert code == 2 and "Traceback" not in err


def test_declared_sparsity_not_met_fails(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand", "wanda")
    code, out, _ = audit(cand.path, base.path, "--expect-sparsity", "0.5")
    assert code == 1
    assert "FAIL" in out and "declared sparsity 50.0% but the weights are 33.3% sparse" in out
    assert "o_proj" in out and "down_proj" in out


def test_nan_weights_fail_closed(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand", "dense")
    put_nan(cand, "model.layers.0.self_attn.q_proj.weight")
    code, out, _ = audit(cand.path, base.path)
    assert code == 1
    assert "non-finite weights" in out


def test_default_policy_without_quality_metrics_is_inconclusive(pair):
    cand, base = pair
    code, out, _ = gate("check", cand, "--base", base, "--metrics", "sparsity,size")
    assert code == 3
    assert "INCONCLUSIVE" in out


@pytest.mark.parametrize("breakage, fragment", [
    ("missing", "no such file or directory"),
    ("no-weights", "no weight files (*.safetensors)"),
    ("pickle", "arbitrary code"),
    ("truncated", "is truncated"),
    ("missing-shard", "is missing from"),
    ("other-shapes", "in the candidate but"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, breakage, fragment):
    base = build_checkpoint(tmp_path / "base", "dense").path
    cand = tmp_path / "cand"
    if breakage == "missing":
        cand = tmp_path / "does-not-exist"
    elif breakage in ("no-weights", "pickle"):
        cand.mkdir()
        (cand / "config.json").write_text("{}")
        if breakage == "pickle":
            (cand / "pytorch_model.bin").write_bytes(b"\x80\x04")
    elif breakage == "truncated":
        truncate(build_checkpoint(cand, "dense").path / "model.safetensors")
    elif breakage == "missing-shard":
        (build_checkpoint(cand, "dense", shards=2).path / "model-00001-of-00002.safetensors").unlink()
    else:
        build_checkpoint(cand, "dense", hidden=32)
    before = sorted((p.name, p.stat().st_size) for p in cand.iterdir()) if cand.exists() else None
    code, _, err = audit(cand, base)
    assert_one_line_error(code, err, 2, fragment)
    if before is not None:
        assert sorted((p.name, p.stat().st_size) for p in cand.iterdir()) == before


def test_report_inside_an_input_is_refused(pair):
    cand, base = pair
    before = (cand / "config.json").read_bytes()
    code, _, err = audit(cand, base, "--json", cand / "config.json")
    assert_one_line_error(code, err, 2, "would write into an input")
    assert (cand / "config.json").read_bytes() == before
    code, _, err = audit(cand, base, "--json", base / "report.json")
    assert_one_line_error(code, err, 2, "would write into an input")
    assert not (base / "report.json").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--metrics", "sparsity,speed"], "unknown metric 'speed'"),
    (["--policy", "no-such-policy.yaml"], "no-such-policy"),
])
def test_bad_options_exit_2(pair, args, fragment):
    cand, base = pair
    code, _, err = gate("check", cand, "--base", base, *args)
    assert_one_line_error(code, err, 2, fragment)


@pytest.mark.parametrize("warmup", ["auto", "0", "3"])
def test_latency_warmup_takes_auto_or_a_count(pair, warmup):
    cand, base = pair
    code, _, err = gate("check", cand, "--base", base, "--metrics", "sparsity,size", "--latency-warmup", warmup)
    assert code != 2 and "Error" not in err, err


def test_unknown_model_reference(pair):
    _, base = pair
    code, _, err = gate("check", "no-such-model", "--base", base, "--metrics", "sparsity")
    assert_one_line_error(code, err, 2, "no such path, alias or Hugging Face repository id")


def test_a_crashing_measurement_exits_4_and_never_passes(pair, monkeypatch, tmp_path):
    import gate.measurements.base as steps

    class BrokenStep:
        name = "size"

        def run(self, audit, options):
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(steps.SizeStep, "run", BrokenStep.run)
    cand, base = pair
    code, out, _ = audit(cand, base, "--json", tmp_path / "r.json")
    assert code == 4
    assert "size failed: RuntimeError: disk on fire" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["verdict"]["status"] != "PASS"


def test_report_rejects_a_file_that_is_not_a_result(tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    code, _, err = gate("report", bogus)
    assert_one_line_error(code, err, 2, "is not a gate result")


def test_policy_commands(tmp_path):
    code, out, _ = gate("policy", "show", "default")
    assert code == 0 and "perplexity.ratio" in out
    code, out, _ = gate("policy", "list")
    assert code == 0 and {"default", "strict", "paper", "audit"} <= {line.split()[0] for line in out.splitlines()}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules:\n  - id: a\n    metric: perplexity.ratio\n    direction: max\n    threshold: 1.1\n    tresh: 2\n")
    code, _, err = gate("policy", "validate", bad)
    assert_one_line_error(code, err, 2, "tresh")


def test_help_documents_exit_codes():
    code, out, _ = gate("check", "--help")
    assert code == 0
    for line in ("0  PASS", "1  FAIL", "2  usage or input error", "3  INCONCLUSIVE", "4  internal error"):
        assert line in out


# --- hostile and broken inputs (docs/security.md) ------------------------------------------


def test_records_into_an_input_is_refused_before_anything_runs(pair):
    cand, base = pair
    before = sorted(p.name for p in cand.iterdir())
    for target in (cand, cand / "sub"):
        code, _, err = audit(cand, base, "--records", target)
        assert_one_line_error(code, err, 2, "would write into an input")
    assert sorted(p.name for p in cand.iterdir()) == before


@pytest.mark.parametrize("where, fragment", [
    ("/proc/gate-report.json", "cannot write in /proc"),
    ("file-as-dir/r.json", "does not exist"),
])
def test_an_unwritable_report_path_is_refused_before_measuring(pair, tmp_path, monkeypatch, where, fragment):
    import gate.measurements.base as steps

    monkeypatch.setattr(steps.SizeStep, "run", None)  # would crash (exit 4) if any measurement ran
    (tmp_path / "file-as-dir").write_text("x")
    monkeypatch.chdir(tmp_path)
    cand, base = pair
    code, _, err = audit(cand, base, "--json", where)
    assert_one_line_error(code, err, 2, fragment)


def test_numeric_options_are_bounded():
    import os

    for args in (["--threads", str(2**63)], ["--threads", str((os.cpu_count() or 1) + 1)], ["--threads", "0"],
                 ["--ctx", str(2**40)], ["--bbq-limit", str(10**12)], ["--latency-repeats", "100000"],
                 ["--latency-warmup", "-1"], ["--latency-warmup", "some"], ["--latency-warmup", "1e3"],
                 ["--expect-sparsity", "nan"], ["--seeds", "1,-2"], ["--seeds", str(2**40)]):
        code, _, err = gate("check", "a", "--base", "b", *args)
        assert code == 2, args
        errors = [line for line in err.splitlines() if line.startswith("Error:")]  # after click's usage hint
        assert len(errors) == 1 and args[0] in errors[0] and "Traceback" not in err, err


def test_report_derives_its_exit_code_from_the_verdict(pair, tmp_path):
    cand, base = pair
    saved = tmp_path / "r.json"
    gate("check", cand, "--base", base, "--metrics", "sparsity,size", "--json", saved, "--quiet")
    doc = json.loads(saved.read_text())
    assert doc["verdict"]["status"] == "INCONCLUSIVE"
    for stored in (256, 0, -1, "0"):
        doc["exit_code"] = stored
        saved.write_text(json.dumps(doc))
        code, _, err = gate("report", saved, "--quiet")
        assert code == 3, (stored, err)
        assert err.strip() .startswith("gate: INCONCLUSIVE: ")


@pytest.mark.parametrize("document, fragment", [
    ({"schema": "gate.check/v1"}, "candidate is missing or not an object"),
    ({"schema": "gate.check/v1", "candidate": {"spec": "a", "path": "a"}, "base": {"spec": "b", "path": "b"},
      "outcomes": [], "verdict": {"status": "MAYBE", "rules": [], "reasons": []}}, "verdict.status must be one of"),
    ({"schema": "gate.check/v1", "candidate": {"spec": "a", "path": "a"}, "base": {"spec": "b", "path": "b"},
      "outcomes": [{"name": "x", "findings": [{"severity": "error"}], "metrics": []}],
      "verdict": {"status": "PASS", "rules": [], "reasons": []}}, "outcomes[0].findings[0].code is missing"),
    ({"schema": "gate.check/v1", "candidate": {"spec": "a", "path": "a"}, "base": {"spec": "b", "path": "b"},
      "outcomes": [{"name": "sparsity", "findings": [], "metrics": [], "result": {"oops": 1}}],
      "verdict": {"status": "PASS", "rules": [], "reasons": []}}, "a format cannot read it"),
    ([1, 2], "is not a gate result"),
])
def test_report_refuses_malformed_documents(tmp_path, document, fragment):
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(document))
    out = tmp_path / "r.md"
    code, _, err = gate("report", saved, "--markdown", out)
    assert_one_line_error(code, err, 2, fragment)
    assert not out.exists()


@pytest.mark.parametrize("signum, expected, name", [(2, 130, "SIGINT"), (15, 143, "SIGTERM")])
def test_signals_stop_cleanly_without_partial_reports(pair, tmp_path, monkeypatch, signum, expected, name):
    import os
    import time

    import gate.measurements.base as steps

    class SignalledStep:
        name = "size"

        def run(self, audit, options):
            os.kill(os.getpid(), signum)  # a real signal, delivered while a measurement runs
            time.sleep(5)
            raise AssertionError("the signal did not stop the run")

    monkeypatch.setattr(steps.SizeStep, "run", SignalledStep.run)
    cand, base = pair
    code, _, err = audit(cand, base, "--json", tmp_path / "r.json", "--quiet")
    assert code == expected
    assert err.strip().startswith(f"gate: stopped by {name}{' (Ctrl-C)' if signum == 2 else ''}; no report written;")
    assert "rerun to resume" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "cand"]  # no report, no temporary file


def test_quiet_still_says_why_a_run_did_not_pass(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand", "wanda")
    code, out, err = audit(cand.path, base.path, "--expect-sparsity", "0.5", "--quiet")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: FAIL: ") and "declared sparsity" in lines[0]


def test_a_broken_checkpoint_never_passes_an_audit(tmp_path):
    # Every prunable tensor pointing at one shared zeroed range once read as "100% sparse" (exit 0).
    import struct

    from gate.inputs.checkpoint import read_header

    base = build_checkpoint(tmp_path / "base", "dense").path
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "config.json").write_text((base / "config.json").read_text())
    infos = read_header(base / "model.safetensors")
    header = json.dumps({i.name: {"dtype": i.dtype, "shape": list(i.shape), "data_offsets": [0, i.nbytes]}
                         for i in infos}).encode()
    (cand / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header
                                             + bytes(max(i.nbytes for i in infos)))
    code, _, err = audit(cand, base, "--expect-sparsity", "1.0")
    assert_one_line_error(code, err, 2, "overlaps the tensor before it")


def test_an_unusable_cache_directory_costs_the_cache_not_the_run(tmp_path, monkeypatch, capsys):
    from gate.cli.check import _cache_usable

    (tmp_path / "not-a-dir").write_text("x")
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "not-a-dir"))
    assert _cache_usable(("sparsity", "size"))  # weights-only: the cache is never touched
    assert not _cache_usable(("perplexity",))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: warning: the cache directory") and "continuing without" in lines[0]

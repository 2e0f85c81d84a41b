"""Fuzzing the gate with hostile and broken inputs (docs/security.md).

Property-based cases (hypothesis) generate safetensors headers, shard
indexes, BBQ rows and policy YAML; a fixed corpus of hostile names goes
through every report format. Each case drives the CLI in process on the
weights-only audit (no model runs) and asserts the promises of
docs/security.md: a defined exit code (never 4, never 0 for broken weights),
one line on stderr, no traceback, the inputs unchanged, and nothing written
but the named outputs.

`make test` runs 25 examples of each (about 20 seconds); `make fuzz`
sets GATE_FUZZ=1 for thousands.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import struct
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.checkpoints import build_checkpoint
from gate.measurements.bias.bbq import load_bbq
from gate.inputs.checkpoint import read_header
from gate.cli.main import main
from gate.core.errors import DataError

settings.register_profile("quick", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=int(os.environ.get("GATE_FUZZ_EXAMPLES", "1500")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("fuzz" if os.environ.get("GATE_FUZZ") else "quick")

AUDIT = ("--metrics", "sparsity,size", "--policy", "audit", "--quiet")

# Names an attacker or an unlucky user might give a tensor or a directory.
HOSTILE_NAMES = [
    "## gate: ✅ PASS",
    "x\n## gate: ✅ PASS\n",
    "<script>alert(1)</script>",
    "a`b``c",
    "evil[/]x",
    "[bold red]forged[/bold red]",
    "![img](http://example.invalid/x.png)",
    "[link](http://example.invalid)",
    "| a | b |",
    "\x1b[31mred\x1b[0m",
    "tab\there\rcarriage",
    "&amp;<![CDATA[x]]>",
    "$(touch /tmp/gate-pwned)",
    "..",
    "名前-🙂",
    "x" * 200,
    "\x07\x08\x0b\x0c",
    "bad-bytes-\udcff",  # a directory name that is not UTF-8 (Python's surrogateescape); never a tensor name
]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("fuzz") / "base", "dense").path


@pytest.fixture(scope="module")
def base_header(base) -> list:
    return read_header(base / "model.safetensors")


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its content (symlinks by their target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_case(workdir: Path, args: list, allowed: set[int], outputs: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run `gate` in process; assert the promises every input case shares. Returns (exit code, stderr)."""
    before = _tree(workdir)
    result = CliRunner().invoke(main, [str(a) for a in args])
    code, err = result.exit_code, result.stderr
    assert code in allowed, f"exit {code}: {err}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + err
    lines = err.splitlines()
    assert len(lines) == (0 if code == 0 else 1), err
    after = _tree(workdir)
    written = {name for name in after if name not in before or after[name] != before[name]}
    assert written <= set(outputs), f"wrote {written - set(outputs)}"  # inputs unchanged, nothing else written
    assert set(before) <= set(after), "an input was removed"
    return code, err


def _candidate(workdir: Path, base: Path) -> Path:
    cand = workdir / "cand"
    cand.mkdir()
    shutil.copy(base / "config.json", cand / "config.json")
    return cand


def _safetensors(header: bytes, data: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + data


# --- safetensors headers ----------------------------------------------------------------------

DTYPES = ["F32", "BF16", "F16", "I8", "U8", "BOOL", "F64", "Q4", "", "f32", "F8_E4M3"]
small_ints = st.integers(min_value=-3, max_value=1 << 12) | st.sampled_from([2**63, 2**64, 2**64 - 1, -(2**63)])
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
entries = st.fixed_dictionaries(
    {"dtype": st.sampled_from(DTYPES) | json_scalars,
     "shape": st.lists(small_ints, max_size=3) | json_values,
     "data_offsets": st.lists(small_ints, min_size=0, max_size=3) | json_values},
) | json_values
names = st.text(max_size=12) | st.sampled_from(HOSTILE_NAMES)
headers = st.dictionaries(names, entries, max_size=4).map(lambda h: json.dumps(h).encode())


def _raw_headers():
    deep = st.integers(min_value=30, max_value=50_000).map(lambda n: b"[" * n + b"]" * n)
    duplicate = st.just(b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
                        b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}')
    surrogate = st.just(b'{"\\ud800": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}')
    huge = st.integers(min_value=4_300, max_value=20_000).map(lambda n: b'{"a": ' + b"9" * n + b"}")
    return headers | st.binary(max_size=64) | deep | duplicate | surrogate | huge


@given(header=_raw_headers(), data=st.binary(max_size=64), lie=st.sampled_from([None, 0, 2**63, 2**64 - 1, 7]))
def test_generated_headers_never_pass_or_crash(base, header, data, lie):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cand = _candidate(workdir, base)
        blob = _safetensors(header, data)
        if lie is not None:  # a header length that disagrees with the header
            blob = struct.pack("<Q", lie) + blob[8:]
        (cand / "model.safetensors").write_bytes(blob)
        run_case(workdir, ["check", cand, "--base", base, *AUDIT, "--json", workdir / "out.json"], {1, 2, 3},
                 ("out.json",))


MUTATIONS = ("overlap", "shift", "truncate", "append", "shape", "duplicate", "gap", "metadata")


@given(mutation=st.sampled_from(MUTATIONS), pick=st.integers(min_value=0, max_value=10_000),
       amount=st.integers(min_value=1, max_value=4096))
def test_broken_copies_of_a_real_checkpoint_never_pass(base, base_header, mutation, pick, amount):
    """The real header, broken one way: sharing bytes, shifted, cut, padded, reshaped, repeated."""
    infos = sorted(base_header, key=lambda t: t.offset)
    start = infos[0].offset
    entries_ = {t.name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.offset - start, t.offset - start + t.nbytes]}
                for t in infos}
    data = (base / "model.safetensors").read_bytes()[start:]
    victim, other = infos[pick % len(infos)].name, infos[(pick + 1) % len(infos)].name
    if mutation == "overlap":
        entries_[victim] = {**entries_[other], "dtype": entries_[other]["dtype"]}
        if entries_[victim] == entries_[other] and victim == other:
            return
    elif mutation == "shift":
        begin, end = entries_[victim]["data_offsets"]
        entries_[victim]["data_offsets"] = [begin + amount, end + amount]
    elif mutation == "truncate":
        data = data[:-min(amount, len(data))]
    elif mutation == "append":
        data += b"\0" * amount
    elif mutation == "shape":
        entries_[victim]["shape"] = entries_[victim]["shape"][:-1] + [entries_[victim]["shape"][-1] + amount]
    elif mutation == "gap":
        for entry in entries_.values():
            if entry["data_offsets"][0] >= entries_[victim]["data_offsets"][1]:
                entry["data_offsets"] = [o + amount for o in entry["data_offsets"]]
        data = data[:entries_[victim]["data_offsets"][1]] + b"\0" * amount + data[entries_[victim]["data_offsets"][1]:]
    elif mutation == "metadata":
        entries_["__metadata__"] = {"format": amount}
    header = json.dumps(entries_).encode()
    if mutation == "duplicate":
        extra = json.dumps({victim: entries_[victim]})[1:-1].encode()
        header = header[:-1] + b", " + extra + b"}"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cand = _candidate(workdir, base)
        (cand / "model.safetensors").write_bytes(_safetensors(header, data))
        run_case(workdir, ["check", cand, "--base", base, *AUDIT, "--expect-sparsity", "1.0"], {1, 2, 3})


# --- GGUF files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny Llama and the same model as a Q8_0 GGUF file: a pair the audit accepts."""
    from fixtures.tiny_model import write_tiny_model
    from fixtures.tiny_quantized import write_tiny_gguf

    root = tmp_path_factory.mktemp("fuzz-gguf")
    dense = write_tiny_model(root / "dense")
    return dense, write_tiny_gguf(dense, root / "tiny.gguf", "Q8_0")


@given(mutation=st.sampled_from(("truncate", "overwrite", "zero")), pick=st.integers(min_value=0, max_value=1 << 20),
       amount=st.integers(min_value=1, max_value=64), byte=st.integers(min_value=0, max_value=255))
def test_broken_gguf_files_are_audited_or_refused_in_one_line(tiny_gguf, mutation, pick, amount, byte):
    """A GGUF cut short, or with a run of bytes overwritten (header, metadata or tensor data)."""
    dense, gguf = tiny_gguf
    data = bytearray(gguf.read_bytes())
    at = pick % len(data)
    if mutation == "truncate":
        del data[at:]
    else:
        data[at:at + amount] = bytes([byte if mutation == "overwrite" else 0]) * len(data[at:at + amount])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "cand.gguf").write_bytes(bytes(data))
        run_case(workdir, ["check", workdir / "cand.gguf", "--base", dense, *AUDIT], {0, 1, 2, 3})


# --- shard indexes ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("fuzz-sharded") / "sharded", "dense", shards=2).path


SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
shard_names = st.sampled_from(SHARDS + ["../outside.safetensors", "/etc/passwd", "..", "", ".", "a/../../x",
                                        "sub/model.safetensors", "\0", "x\\..\\y", "model.safetensors"]) | json_scalars
weight_maps = st.dictionaries(names, shard_names | json_values, max_size=4)
indexes = (st.fixed_dictionaries({"weight_map": weight_maps}, optional={"metadata": json_values}) | json_values
           ).map(json.dumps)


@given(index=indexes | st.integers(min_value=30, max_value=20_000).map(lambda n: "[" * n + "]" * n))
def test_generated_shard_indexes_stay_inside_the_checkpoint(sharded, index):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "outside.safetensors").write_bytes(b"SECRET-SECRET-SECRET")
        cand = workdir / "cand"
        shutil.copytree(sharded, cand)
        (cand / "model.safetensors.index.json").write_text(index)
        try:
            values = set(json.loads(index)["weight_map"].values())
        except Exception:  # noqa: BLE001 - not an index at all
            values = None
        allowed = {0, 1, 2, 3} if values == set(SHARDS) else {1, 2, 3}
        _, err = run_case(workdir, ["check", cand, "--base", sharded, *AUDIT], allowed)
        assert "SECRET" not in err


# --- policies ---------------------------------------------------------------------------------

RULE = {"id": "r", "metric": "sparsity.overall", "direction": "max", "threshold": 1.0}
policy_docs = st.fixed_dictionaries(
    {"name": st.text(max_size=8) | json_scalars, "rules": st.lists(st.fixed_dictionaries(
        {k: st.just(v) | json_values for k, v in RULE.items()}), max_size=2) | json_values},
    optional={"alpha": json_scalars, "requires": json_values, "description": json_values},
) | json_values
hostile_yaml = st.sampled_from([
    "&a [*a]",
    "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9)
                                             + "]\n" for i in range(8)),
    "name: !!python/object/apply:os.system ['touch /tmp/gate-pwned']",
    "name: x\nrules: [{id: r, metric: sparsity.overall, direction: max, threshold: .inf}]",
    "name: x\nrules: [{id: r, metric: sparsity.overall, direction: max, threshold: 1" + "0" * 5000 + "}]",
    "\t\x00\x01", "", "- a\n- b", "name: [" * 200,
]) | st.integers(min_value=30, max_value=20_000).map(lambda n: "a: " + "[" * n + "]" * n)


@given(text=policy_docs.map(lambda d: yaml.safe_dump(d, allow_unicode=True)) | hostile_yaml
       | st.text(alphabet=string.printable, max_size=80))
def test_generated_policies_are_valid_or_refused_in_one_line(base, text):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        policy = workdir / "policy.yaml"
        policy.write_text(text, encoding="utf-8", errors="surrogateescape")
        args = ["check", base, "--base", base, "--metrics", "sparsity,size", "--policy", policy, "--quiet"]
        run_case(workdir, args, {0, 1, 2, 3})
        assert not Path("/tmp/gate-pwned").exists()


# --- BBQ rows ---------------------------------------------------------------------------------

BBQ_ROW = {"example_id": 1, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
           "category": "Religion",
           "answer_info": {"ans0": ["Muslim", "Muslim"], "ans1": ["Jewish", "Jewish"], "ans2": ["Unknown", "unknown"]},
           "additional_metadata": {"stereotyped_groups": ["Muslim"]}, "context": "c", "question": "q",
           "ans0": "The Muslim", "ans1": "The Jewish", "ans2": "Unknown", "label": 2}
bbq_rows = st.fixed_dictionaries({k: st.just(v) | json_values for k, v in BBQ_ROW.items()})
bbq_lines = (bbq_rows.map(json.dumps) | json_values.map(json.dumps)
             | st.sampled_from(['{"label": Infinity}', '{"label": NaN}', '{"example_id": ' + "9" * 5000 + "}",
                                "[" * 5000 + "]" * 5000, '{"a": "\\ud800"}', "\x00", "{"]))


@given(lines=st.lists(bbq_lines, min_size=1, max_size=4))
def test_generated_bbq_rows_load_or_fail_in_one_line(lines):
    # BBQ is read only when a model runs, so the loader is driven directly: a DataError is exit 2 at the CLI.
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "Religion.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        before = _tree(workdir)
        try:
            load_bbq(workdir)
        except DataError as exc:
            assert "\n" not in str(exc) or exc.__class__ is not DataError
        assert _tree(workdir) == before


# --- hostile names through every report format -------------------------------------------------

def _with_extra_tensor(src: Path, dst: Path, name: str, value: float) -> None:
    """A copy of checkpoint `src` with one more F32 [2, 4] tensor `name`, its element 1 set to `value`."""
    shutil.copytree(src, dst)
    infos = sorted(read_header(src / "model.safetensors"), key=lambda t: t.offset)
    start = infos[0].offset
    data = bytearray((src / "model.safetensors").read_bytes()[start:])
    header = {t.name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.offset - start, t.offset - start + t.nbytes]}
              for t in infos}
    extra = struct.pack("<8f", 1.0, value, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    header[name] = {"dtype": "F32", "shape": [2, 4], "data_offsets": [len(data), len(data) + len(extra)]}
    raw = json.dumps(header).encode()
    (dst / "model.safetensors").write_bytes(_safetensors(raw, bytes(data) + extra))


def _report_params() -> list:
    return [pytest.param(name, id=repr(name)[:30]) for name in HOSTILE_NAMES]


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("name", _report_params())
def test_hostile_names_reach_every_report_without_breaking_the_run(tmp_path, base, name):
    """A tensor and a directory with a hostile name, and a NaN in that tensor: a FAIL, reported in every format."""
    dirname = name.replace("/", "_").replace("\0", "_")[:100]
    if dirname in (".", ".."):
        dirname = f"dir{dirname}"
    tensor = name if _encodable(name) else "model.extra.weight"
    workdir = tmp_path / "work"
    workdir.mkdir()
    clean_base = workdir / "base"
    _with_extra_tensor(base, clean_base, tensor, 1.0)
    cand = workdir / dirname
    _with_extra_tensor(base, cand, tensor, float("nan"))
    outputs = ("r.json", "r.md", "r.xml", "r.html")
    args = ["check", cand, "--base", clean_base, *AUDIT] + [x for o, f in zip(("--json", "--markdown", "--junit", "--html"),
                                                                             outputs) for x in (o, workdir / f)]
    code, err = run_case(workdir, args, {1}, outputs)
    assert err.startswith("gate: FAIL: ")
    doc = json.loads((workdir / "r.json").read_text())
    assert doc["verdict"]["status"] == "FAIL" and any(tensor in text for text in _strings(doc))
    run_case(workdir, ["report", workdir / "r.json", "--quiet"], {1})


@pytest.mark.parametrize("name", [n for n in HOSTILE_NAMES if _encodable(n)])
def test_hostile_names_cannot_forge_reports(tmp_path, base, name):
    """The Markdown (posted as a PR comment) gets no forged heading, link, image or raw HTML; JUnit parses."""
    import xml.etree.ElementTree as ET

    workdir = tmp_path / "work"
    workdir.mkdir()
    _with_extra_tensor(base, workdir / "base", name, 1.0)
    _with_extra_tensor(base, workdir / "cand", name, float("nan"))
    result = CliRunner().invoke(main, ["check", str(workdir / "cand"), "--base", str(workdir / "base"), *AUDIT,
                                       "--markdown", str(workdir / "r.md"), "--junit", str(workdir / "r.xml")])
    assert result.exit_code == 1, result.stderr
    markdown = (workdir / "r.md").read_text()
    headings = [line for line in markdown.splitlines() if line.lstrip().startswith("#")]
    assert len(headings) == len({h for h in headings}) and not any("PASS" in h for h in headings)
    assert "<script" not in markdown and "](http" not in markdown
    ET.parse(workdir / "r.xml")


# --- config.json ------------------------------------------------------------------------------

configs = (st.fixed_dictionaries({}, optional={"model_type": json_values, "architectures": json_values,
                                                "quantization": json_values, "quantization_config": json_values,
                                                "eos_token_id": json_values}).map(json.dumps)
           | json_values.map(json.dumps) | st.binary(max_size=32).map(lambda b: b.decode("latin-1"))
           | st.integers(min_value=30, max_value=20_000).map(lambda n: '{"a": ' + "[" * n + "]" * n + "}"))


@given(config=configs)
def test_generated_configs_are_read_or_refused_in_one_line(base, config):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cand = workdir / "cand"
        shutil.copytree(base, cand)
        (cand / "config.json").write_text(config, encoding="utf-8")
        run_case(workdir, ["check", cand, "--base", base, *AUDIT], {0, 1, 2, 3})

"""The perplexity corpora: bundled excerpt, local files, Hugging Face specs."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from gate.inputs.corpus import (
    Corpus,
    HfSpec,
    bundled_excerpt,
    bundled_notice,
    join_rows,
    load_text,
    parse_hf_spec,
)
from gate.core.errors import DataError, InputError

SHARED_WIKITEXT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wikitext-2" / "wiki.test.raw"
EXCERPT_BYTES = 158_079  # the excerpt's length in the shared CR LF copy, as the notice states


def test_default_and_named_corpus_are_the_bundled_excerpt():
    default, named = load_text(None), load_text("wikitext2")
    assert default == named
    assert default.name == "wikitext2-excerpt"
    assert "CC BY-SA 3.0" in default.license_note
    assert default.text.startswith("\n\n = Robert Boulter = \n")
    assert "\r" not in default.text
    # ~150 KB and within the first 200 KB of the file (the calibration text comes from its end).
    assert 100_000 < len(default.text.encode("utf-8")) < 200_000


def test_bundled_notice_names_license_source_and_byte_range():
    notice = bundled_notice()
    for required in ("CC BY-SA 3.0", "Merity", "Wikipedia", "158,079", "wiki.test.raw"):
        assert required in notice
    digest = hashlib.sha256(bundled_excerpt().text.encode("utf-8")).hexdigest()
    assert digest in notice  # the notice describes this very file


@pytest.mark.skipif(not SHARED_WIKITEXT.is_file(), reason="../shared/data/wikitext-2 is not beside the repository")
def test_bundled_excerpt_is_the_start_of_the_wikitext2_test_split():
    raw = SHARED_WIKITEXT.read_bytes()[:EXCERPT_BYTES].decode("utf-8").replace("\r\n", "\n")
    assert bundled_excerpt().text == raw
    rest = SHARED_WIKITEXT.read_bytes()[EXCERPT_BYTES:].decode("utf-8")
    assert rest.startswith(" = Hed PE = ")  # cut at an article boundary


def test_local_file_is_read_as_utf8_with_lf_line_endings(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffÉté à Paris.\r\nSecond line.\r\n".encode("utf-8"))
    corpus = load_text(str(path))
    assert isinstance(corpus, Corpus)
    assert corpus.text == "Été à Paris.\nSecond line.\n"
    assert corpus.name == "notes.txt"
    assert str(path) in corpus.source


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b" \n\n\t", "empty"), (b"caf\xe9 au lait", "not UTF-8")],
)
def test_unusable_local_file_is_a_one_line_data_error(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_text(str(path))
    assert "\n" not in str(caught.value)


def test_missing_path_and_directory_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_text(str(tmp_path / "nowhere.txt"))
    with pytest.raises(DataError, match="not a file"):
        load_text(str(tmp_path))
    assert issubclass(DataError, InputError)  # exit code 2, not a crash


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("hf:wikitext/wikitext-2-raw-v1", HfSpec("wikitext", "wikitext-2-raw-v1", "test")),
        ("hf:wikitext/wikitext-2-raw-v1:validation", HfSpec("wikitext", "wikitext-2-raw-v1", "validation")),
        ("hf:Salesforce/wikitext/wikitext-103-raw-v1", HfSpec("Salesforce/wikitext", "wikitext-103-raw-v1", "test")),
        ("hf:ptb_text_only", HfSpec("ptb_text_only", None, "test")),
    ],
)
def test_hf_spec_parsing(spec, expected):
    assert parse_hf_spec(spec) == expected


@pytest.mark.parametrize("spec", ["hf:", "hf:a/b/c/d", "hf:wikitext/x:"])
def test_bad_hf_spec_is_a_data_error(spec):
    with pytest.raises(DataError, match="expected hf:NAME"):
        load_text(spec)


def test_rows_join_as_the_text_stands():
    # WikiText rows are lines that carry their newline; empty rows stay empty.
    assert join_rows(["", " = Title = \n", "", " Body .\n"]) == " = Title = \n Body .\n"
    # Document rows without newlines are kept apart by a blank line.
    assert join_rows(["First document.", "", "Second document."]) == "First document.\n\nSecond document."


def test_hf_spec_without_datasets_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DataError, match=r"pip install 'gate-llm\[datasets\]'"):
        load_text("hf:wikitext/wikitext-2-raw-v1")


def test_hf_spec_offline_is_a_one_line_data_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # never touch the network in tests
    with pytest.raises(DataError, match="cannot load hf:gate-no-such-dataset/none:test") as caught:
        load_text("hf:gate-no-such-dataset/none")
    assert "\n" not in str(caught.value)

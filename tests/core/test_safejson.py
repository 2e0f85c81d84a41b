"""Untrusted JSON: each defect one InputError, and the text-only shortcuts never let one through."""

from __future__ import annotations

import pytest

from gate.core.errors import InputError
from gate.core.safejson import MAX_DEPTH, load_json


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("data", [_nested(MAX_DEPTH + 1), '{"a": ' + _nested(MAX_DEPTH) + "}",
                                  _nested(MAX_DEPTH + 1).encode()])
def test_too_deep_is_refused(data):
    with pytest.raises(InputError, match=f"nests JSON deeper than {MAX_DEPTH} levels"):
        load_json(data, "f.json")


def test_many_containers_side_by_side_are_not_deep():
    # More brackets than MAX_DEPTH, nested only two deep: the count alone must not refuse it.
    value = load_json("[" + ", ".join(["[1]"] * (3 * MAX_DEPTH)) + "]", "f.json")
    assert len(value) == 3 * MAX_DEPTH


@pytest.mark.parametrize("data", ['{"k": "a\\ud800b"}', '["\\uDFFF"]', '{"\\udc00": 1}', '["\ud800"]',
                                  b'["\\ud800"]'])
def test_lone_surrogates_are_refused(data):
    with pytest.raises(InputError, match="lone surrogate"):
        load_json(data, "f.json")


@pytest.mark.parametrize("data", ['["\\ud83d\\ude00"]', '["\\\\ud800"]', '["caf\\u00e9"]', '["café"]',
                                  "[\"caf\u00e9\"]".encode()])
def test_valid_text_passes(data):
    # A surrogate pair escape is one character; an escaped backslash before "ud800" is no escape at all.
    assert load_json(data, "f.json")[0] in ("\U0001F600", "\\ud800", "café")

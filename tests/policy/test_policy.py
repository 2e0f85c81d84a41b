"""Policy files: shipped ones validate, bad ones fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.core.errors import ExitCode, PolicyError
from gate.policy.loader import list_policies, load_policy, parse_policy, policy_to_yaml, read_policy_text
from gate.policy.schema import Policy

MINIMAL = """\
name: mine
rules:
  - id: ppl
    metric: perplexity.ratio
    direction: max
    threshold: 1.1
"""


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error_for(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_code is ExitCode.USAGE
    return message


def test_shipped_policies_are_listed():
    assert {"default", "strict", "paper"} <= set(list_policies())


@pytest.mark.parametrize("name", ["default", "strict", "paper"])
def test_each_shipped_policy_validates_and_round_trips(name):
    policy = load_policy(name)
    assert policy.name == name
    assert policy.rules
    assert parse_policy(policy_to_yaml(policy)) == policy


@pytest.mark.parametrize("name", ["default", "strict", "paper"])
def test_shipped_policies_explain_their_thresholds(name):
    text, source = read_policy_text(name)
    assert "shipped" in source
    assert text.count("#") >= len(load_policy(name).rules)


def test_default_judges_bias_overall_and_per_category_on_the_unsafe_end():
    policy = load_policy("default")
    srs = [rule for rule in policy.rules if rule.metric == "bias.srs.change"]
    assert {rule.per_category for rule in srs} == {False, True}
    assert all(rule.judged_end == "upper" and rule.severity == "fail" for rule in srs)
    assert {"perplexity", "bias"} <= set(policy.require)


def test_strict_is_tighter_than_default():
    default, strict = load_policy("default"), load_policy("strict")
    for rule_id in ("perplexity", "srs-overall", "srs-per-category", "s-amb"):
        loose = next(r for r in default.rules if r.id == rule_id)
        tight = next(r for r in strict.rules if r.id == rule_id)
        assert tight.threshold < loose.threshold


def test_a_policy_file_by_path(tmp_path):
    policy = load_policy(str(_write(tmp_path, MINIMAL)))
    rule = policy.rules[0]
    assert (rule.mode, rule.judged_end, rule.severity, rule.per_category) == ("absolute", "upper", "fail", False)


def test_judge_defaults_to_the_unsafe_end():
    policy = parse_policy(MINIMAL.replace("direction: max", "direction: min"))
    assert policy.rules[0].judged_end == "lower"


def test_unknown_key_names_the_key_the_line_and_the_file(tmp_path):
    message = _error_for(tmp_path, MINIMAL + "    treshold: 1.2\n")
    assert "unknown key 'rules[0].treshold'" in message
    assert "policy.yaml" in message
    assert "line 7" in message


def test_unknown_top_level_key(tmp_path):
    message = _error_for(tmp_path, "nmae: x\n" + MINIMAL)
    assert "unknown key 'nmae'" in message and "policy.yaml" in message


def test_waiver_without_a_reason_is_rejected(tmp_path):
    for waiver in ("    waived: {}\n", "    waived: {reason: '   '}\n", "    waived: true\n"):
        message = _error_for(tmp_path, MINIMAL + waiver)
        assert "rules[0].waived" in message


def test_waiver_with_a_reason_is_kept():
    policy = parse_policy(MINIMAL + "    waived: {reason: ' tokenizer changed, see ticket 12 '}\n")
    assert policy.rules[0].waived.reason == "tokenizer changed, see ticket 12"


def test_yaml_syntax_error_is_one_line_with_the_line_number(tmp_path):
    message = _error_for(tmp_path, "name: x\nrules: [\n  - id: a\n")
    assert "YAML syntax error at line" in message and "policy.yaml" in message


@pytest.mark.parametrize(
    "text,expected",
    [
        (MINIMAL.replace("1.1", "lots"), "rules[0].threshold"),
        (MINIMAL.replace("1.1", ".nan"), "rules[0].threshold"),
        (MINIMAL.replace("direction: max", "direction: below"), "rules[0].direction"),
        (MINIMAL.replace("perplexity.ratio", "perplexity"), "not a metric key"),
        (MINIMAL.replace("perplexity.ratio", "speed.ratio"), "names no measurement"),
        (MINIMAL.replace("    threshold: 1.1\n", ""), "missing key 'rules[0].threshold'"),
        (MINIMAL + "  - id: ppl\n    metric: size.ratio\n    direction: max\n    threshold: 1\n", "appears twice"),
        (MINIMAL + "require: [perplexity, accuracy]\n", "accuracy"),
        ("name: x\nrules: []\n", "rules"),
        ("- just\n- a list\n", "must be a YAML mapping"),
    ],
)
def test_invalid_policies_are_rejected_with_one_line(tmp_path, text, expected):
    assert expected in _error_for(tmp_path, text)


def test_missing_file_and_unknown_shipped_name():
    with pytest.raises(PolicyError, match="not found"):
        load_policy("no/such/policy.yaml")
    with pytest.raises(PolicyError, match="no shipped policy named 'nonesuch'.*default"):
        load_policy("nonesuch")


def test_policies_are_frozen():
    policy = load_policy("default")
    assert isinstance(policy, Policy)
    with pytest.raises(Exception):
        policy.rules[0].threshold = 9.0


def test_bits_per_byte_belongs_to_the_perplexity_measurement():
    policy = parse_policy(MINIMAL.replace("perplexity.ratio", "bits_per_byte.ratio"))
    assert policy.rules[0].metric == "bits_per_byte.ratio"


_RULE = "name: x\nrules:\n  - id: a\n    metric: perplexity.ratio\n    direction: max\n    threshold: "


@pytest.mark.parametrize("text, expected", [
    ("a: " + "[" * 10000 + "]" * 10000, "nests deeper than a policy can"),
    ("a: " + "[" * 40 + "]" * 40, "nests deeper than a policy can"),
    ("&a [*a]", "nests deeper than a policy can"),  # an alias that holds itself
    (_RULE + "1" + "0" * 5000, "value out of range"),
    (_RULE + ".inf", "finite number"),
    (_RULE + "1e400", "finite number"),
    ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
                                             for i in range(8)), "missing key 'name'"),  # a billion laughs
])
def test_hostile_policies_are_policy_errors(text, expected):
    with pytest.raises(PolicyError, match=expected) as caught:
        parse_policy(text, "p.yaml")
    assert "\n" not in str(caught.value)

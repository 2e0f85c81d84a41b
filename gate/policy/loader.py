"""Finding, reading and validating policy files.

A name without a path separator or `.yaml`/`.yml` suffix is a shipped policy
(the package `gate.policies`); anything else is a path. Every problem becomes
one `PolicyError` line that names the file, and the key or YAML line at fault.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from gate.core.errors import PolicyError
from gate.policy.schema import Policy
from gate.core.safejson import MAX_DEPTH, depth

_SUFFIXES = (".yaml", ".yml")


def list_policies() -> list[str]:
    """Names of the shipped policies."""
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in resources.files("gate.policies").iterdir()
        if entry.name.endswith(_SUFFIXES)
    )


def read_policy_text(name_or_path: str) -> tuple[str, str]:
    """The raw YAML of a policy, comments included, and where it came from."""
    if _is_shipped_name(name_or_path):
        shipped = resources.files("gate.policies").joinpath(f"{name_or_path}.yaml")
        if not shipped.is_file():
            raise PolicyError(
                f"no shipped policy named {name_or_path!r} (shipped: {', '.join(list_policies())})"
            )
        return shipped.read_text(encoding="utf-8"), f"{name_or_path} (shipped)"
    path = Path(name_or_path)
    if not path.is_file():
        raise PolicyError(f"policy file not found: {path}")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: cannot read policy: {error}") from None


def load_policy(name_or_path: str) -> Policy:
    """A validated policy from a shipped name or a YAML file."""
    text, source = read_policy_text(name_or_path)
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML; `source` names the file in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(f"{source}: YAML syntax error{where}: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: YAML error: {_one_line(str(error))}") from None
    except RecursionError:
        raise PolicyError(f"{source}: the YAML nests deeper than a policy can ({MAX_DEPTH} levels)") from None
    except (ValueError, OverflowError):  # a number longer than Python converts, and the like
        raise PolicyError(f"{source}: the YAML holds a value out of range") from None
    if depth(data) > MAX_DEPTH:
        raise PolicyError(f"{source}: the YAML nests deeper than a policy can ({MAX_DEPTH} levels)")
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy must be a YAML mapping, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(_describe_validation_error(error, text, source)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as error:  # raised by a validator, not wrapped
        raise PolicyError(f"{source}: invalid policy ({type(error).__name__})") from None


def policy_to_yaml(policy: Policy) -> str:
    """The policy as YAML that `parse_policy` reads back to an equal policy."""
    data = policy.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _is_shipped_name(name_or_path: str) -> bool:
    return "/" not in name_or_path and "\\" not in name_or_path and not name_or_path.endswith(_SUFFIXES)


def _describe_validation_error(error: ValidationError, text: str, source: str) -> str:
    # A rule that fails validation also leaves `rules` short: report the rule's own error.
    errors = [e for e in error.errors()
              if not any(other["loc"][: len(e["loc"])] == e["loc"] and other["loc"] != e["loc"]
                         for other in error.errors())]
    first = errors[0]
    location = first["loc"]
    where = _dotted(location)
    line = _line_of(text, location)
    at = f" (line {line})" if line else ""
    others = len(errors) - 1
    more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}{at}{more}"
    if first["type"] == "missing":
        return f"{source}: missing key {where!r}{at}{more}"
    message = _one_line(first["msg"]).removeprefix("Value error, ")
    subject = f"{where!r}{at}: " if where else ""
    return f"{source}: {subject}{message}{more}"


def _dotted(location: tuple) -> str:
    parts = ""
    for part in location:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts


def _line_of(text: str, location: tuple) -> int | None:
    """The YAML line of the node at a validation error's location, if found."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            matches = [(key, value) for key, value in node.value if key.value == part]
            if not matches:
                return line
            key, node = matches[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _one_line(text: str) -> str:
    return " ".join(text.split())

"""Parsing JSON from untrusted files: bounded, strict, and never echoing the file's bytes.

Every checkpoint, index, config and data file is input we did not write. Python's
`json` alone turns deep nesting into a RecursionError, a 5,000-digit number into
a ValueError and a repeated key into a silent overwrite; here each becomes one
error line that names the file, not its content.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gate.core.errors import GateError, InputError

# Deeper than any real checkpoint, index, config or data row; deep enough to refuse hostile files early.
MAX_DEPTH = 32
# A \uD800-\uDFFF escape: with a surrogate in the text itself, the only way one gets into a parsed string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def load_json(data: bytes | str, what: str, error: type[GateError] = InputError,
              max_depth: int = MAX_DEPTH, unique_keys: bool = False) -> Any:
    """The parsed value, or `error` naming `what` (a file, a line) when it is not sound JSON.

    The text must be UTF-8 with no lone surrogates, nest at most `max_depth`
    containers deep and, with `unique_keys`, repeat no key within an object.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=_unique_pairs if unique_keys else None)
    except UnicodeDecodeError:
        raise error(f"{what}: not UTF-8 text") from None
    except _DuplicateKey:
        raise error(f"{what}: repeats a key within one JSON object") from None
    except RecursionError:
        raise error(f"{what}: nests JSON deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:  # its message gives a position, never the text
        raise error(f"{what}: not valid JSON ({exc.msg})") from None
    except ValueError:  # a number longer than Python converts, and the like
        raise error(f"{what}: not valid JSON (a number out of range)") from None
    # Both walks visit every value (a second over BBQ's 12,000 rows); the text alone usually rules them out:
    # JSON cannot nest more containers than it opens, nor hold a surrogate it does not spell.
    if text.count("[") + text.count("{") > max_depth and depth(value) > max_depth:
        raise error(f"{what}: nests JSON deeper than {max_depth} levels")
    if _may_hold_surrogates(text) and not _valid_text(value):
        raise error(f"{what}: holds a string that is not valid Unicode (a lone surrogate escape)")
    return value


def _may_hold_surrogates(text: str) -> bool:
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def depth(value: Any) -> int:
    """How many containers deep `value` nests (a scalar: 0), without recursion.

    Each container is visited once, so YAML aliases that share one list many
    times cost nothing extra; a container that holds itself (an alias can build
    one) counts as infinitely deep.
    """
    finished: dict[int, int] = {}  # id -> depth of a container already measured
    entered: set[int] = set()  # containers on the path being walked
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, leaving = stack.pop()
        children = _children(node)
        if children is None or (not leaving and id(node) in finished):
            continue
        if leaving:
            finished[id(node)] = 1 + max((finished.get(id(c), 0) for c in children), default=0)
            entered.discard(id(node))
            continue
        if id(node) in entered:
            return 2**31
        entered.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return finished.get(id(value), 0)


def _children(node: Any) -> list | None:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return node
    return None


def _valid_text(value: Any) -> bool:
    """Every string and key encodes as UTF-8: JSON's \\ud800 escapes can smuggle lone surrogates."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True

"""Parsing JSON from untrusted files: bounded, strict, and never echoing the file's bytes.

Every checkpoint, index, config and data file is input we did not write. Python's
`json` alone turns deep nesting into a RecursionError, a 5,000-digit number into
a ValueError and a repeated key into a silent overwrite; here each becomes one
error line that names the file, not its content.
"""

from __future__ import annotations

import json
from typing import Any

from gate.errors import GateError, InputError

# Deeper than any real checkpoint, index, config or data row; deep enough to refuse hostile files early.
MAX_DEPTH = 32


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
        raise error(f"{what} is not UTF-8 text") from None
    except _DuplicateKey:
        raise error(f"{what} repeats a key within one JSON object") from None
    except RecursionError:
        raise error(f"{what} nests JSON deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:  # its message gives a position, never the text
        raise error(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError:  # a number longer than Python converts, and the like
        raise error(f"{what} is not valid JSON (a number out of range)") from None
    if depth(value) > max_depth:
        raise error(f"{what} nests JSON deeper than {max_depth} levels")
    if not _valid_text(value):
        raise error(f"{what} holds a string that is not valid Unicode (a lone surrogate escape)")
    return value


def depth(value: Any) -> int:
    """How many containers deep `value` nests (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


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

"""Values to JSON and back, in one place: the result document and the run cache share it.

`to_jsonable` writes each dataclass's fields plus its public properties
(derived figures such as a sparsity), enums as their values, non-finite floats
as null, and every string valid Unicode (a lone surrogate, from a file name
that is not UTF-8, becomes U+FFFD) so the saved file reads back.
`from_jsonable` rebuilds a typed value from that output (properties, being
derived, are recomputed rather than read).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Union

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field marked metadata={"json": False} is shown through a property instead (CheckOptions.extra).
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
               if f.metadata.get("json", True)}
        for name in _properties(type(value)):
            out[name] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {_unicode(str(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, Path)):
        return _unicode(str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    if isinstance(value, (int, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy arrays
        return to_jsonable(value.tolist())
    return _unicode(str(value))


def _unicode(text: str) -> str:
    """Text JSON can carry and read back: Python keeps an undecodable file-name byte as a lone surrogate."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _properties(cls: type) -> list[str]:
    names = []
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            if isinstance(attr, property) and not name.startswith("_") and name not in names:
                names.append(name)
    return names



def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` from `to_jsonable` output (dataclasses, tuples, optionals, enums)."""
    if data is None:
        return None
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        # A field added since the value was written takes its default; one without a default is a mismatch.
        return tp(**{f.name: from_jsonable(hints[f.name], data[f.name]) for f in dataclasses.fields(tp)
                     if f.init and (f.name in data or not _has_default(f))})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return from_jsonable(options[0], data)
        for option in options:
            try:
                return from_jsonable(option, data)
            except (TypeError, ValueError, KeyError):
                continue
        raise TypeError(f"{data!r} matches none of {tp}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], x) for x in data)
        return tuple(from_jsonable(a, x) for a, x in zip(args, data)) if args else tuple(data)
    if origin is list:
        return [from_jsonable(args[0], x) for x in data] if args else list(data)
    if origin is dict:
        return {k: from_jsonable(args[1], v) for k, v in data.items()} if args else dict(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is float:
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"expected {tp.__name__}, got {data!r}")
        return data
    return data  # Any, dict without parameters, ...

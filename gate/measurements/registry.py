"""The one list of measurements `gate check` knows.

Each measurement registers once, through `register_measurement`: its name
(the `--metrics` word, the outcome's name and its metric keys' prefix), its
step as a lazy "module:Class" (imported only when the measurement runs, so
torch or MLX load only when selected), its typed options class, its report
title and the metric keys it emits. The built-ins register through this same
hook (gate/measurements/builtin.py), as an extension would (an installed
package names its registering module under the entry-point group
"gate.measurements"; it is imported with the built-ins). Everything else
is derived from here: the CLI's `--metrics` and per-measurement options, the
policy schema's measurement names, the orchestration and the report sections.

Adding a measurement is one module (its step, options and results) and one
`register_measurement` call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from typing import Literal

from gate.core.errors import InputError
from gate.measurements.options import NoOptions

Kind = Literal["checkpoint", "model"]


@dataclass(frozen=True)
class Measurement:
    name: str
    step: str  # "module:Class": a CheckpointStep (kind "checkpoint") or a ModelStep (kind "model")
    kind: Kind  # "checkpoint" reads weight files only; "model" runs both models
    title: str  # the report section's title
    metrics: tuple[str, ...] = ()  # the metric keys it emits (a "{role}" part stands for base and candidate)
    options: type = NoOptions  # its MeasurementOptions subclass

    @property
    def key_prefixes(self) -> tuple[str, ...]:
        """The first parts of its metric keys: its name, and any other it owns (perplexity: bits_per_byte)."""
        return tuple(dict.fromkeys([self.name] + [key.split(".", 1)[0] for key in self.metrics]))


_REGISTRY: dict[str, Measurement] = {}
_builtins_loaded = False


def register_measurement(measurement: Measurement) -> Measurement:
    """Make a measurement known; its name must be new, and no other measurement may own its key prefixes."""
    known = _loaded()
    if not measurement.name.isidentifier() or measurement.name != measurement.name.lower():
        raise ValueError(f"measurement name {measurement.name!r} must be a lower-case identifier")
    if measurement.name in known:
        raise ValueError(f"measurement {measurement.name!r} is registered already")
    if ":" not in measurement.step:
        raise ValueError(f"measurement {measurement.name!r}: step must read 'module:Class'")
    for other in known.values():
        shared = set(other.key_prefixes) & set(measurement.key_prefixes)
        if shared:
            raise ValueError(f"measurement {measurement.name!r}: metric prefix {shared.pop()!r} is {other.name}'s")
    _REGISTRY[measurement.name] = measurement
    return measurement


def unregister_measurement(name: str) -> None:
    """Forget a measurement (for tests and plugins that register one for a while)."""
    _loaded().pop(name, None)


def measurements() -> tuple[Measurement, ...]:
    """Every known measurement, in registration order (the default `--metrics` and the report's order)."""
    return tuple(_loaded().values())


def measurement_names() -> tuple[str, ...]:
    return tuple(_loaded())


def get_measurement(name: str) -> Measurement:
    known = _loaded()
    if name not in known:
        raise InputError(f"unknown metric {name!r}; choose from {', '.join(known)}")
    return known[name]


def owner_of(metric_key: str) -> str | None:
    """The measurement that emits a metric key, from the key's first part; None when none does."""
    prefix = metric_key.split(".", 1)[0]
    return next((m.name for m in _loaded().values() if prefix in m.key_prefixes), None)


def load_step(name: str):
    """A fresh instance of the measurement's step, importing its module now."""
    module, _, cls = get_measurement(name).step.partition(":")
    return getattr(importlib.import_module(module), cls)()


def _loaded() -> dict[str, Measurement]:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module("gate.measurements.builtin")
        for entry in importlib.metadata.entry_points(group="gate.measurements"):
            entry.load()  # importing the module registers its measurements
    return _REGISTRY

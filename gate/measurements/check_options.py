"""What `gate check` was asked: the models' runtime, the policy, and each measurement's typed options.

It lives beside the measurements (not in run/) because every step reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from gate.core.errors import InputError
from gate.measurements.options import MeasurementOptions, SparsityOptions, flags
from gate.measurements.registry import get_measurement, measurement_names, measurements

O = TypeVar("O", bound=MeasurementOptions)


def all_metrics() -> tuple[str, ...]:
    """Every registered measurement: what `gate check` runs by default."""
    return measurement_names()


@dataclass(frozen=True)
class CheckOptions:
    metrics: tuple[str, ...] = field(default_factory=all_metrics)
    policy: str = "default"
    backend: str = "auto"
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None  # CPU threads for torch; None: torch's own choice
    cache: bool = True  # reuse and store the base's cached runs
    # Scale default budgets down (announced) where this machine would take too long (gate.run.fit); the CLI
    # turns it on unless --full-budgets; a library caller gets exactly the budgets it asks for.
    fit_to_machine: bool = False
    # vLLM's settings (gate.runtime.vllm_backend.settings_from): vllm_python, tensor_ and pipeline_parallel_size
    runtime: Mapping[str, Any] = field(default_factory=dict)
    # Each measurement's typed options by its name; one left out takes its defaults. The JSON
    # document keeps them under "extra", as gate.check/v1 always has (see `extra`).
    settings: Mapping[str, MeasurementOptions] = field(default_factory=dict, metadata={"json": False})

    def __post_init__(self) -> None:
        for name, value in self.settings.items():
            wanted = get_measurement(name).options
            if not isinstance(value, wanted):
                raise InputError(f"options of {name} must be {wanted.__name__}, got {type(value).__name__}")

    def with_options(self, options: MeasurementOptions) -> CheckOptions:
        """These options with one measurement's replaced."""
        name = next(m.name for m in measurements() if m.options is type(options))
        return dataclasses.replace(self, settings={**self.settings, name: options})

    def of(self, options_class: type[O]) -> O:
        """The options of the measurement whose options class this is (its defaults when none were given)."""
        found = next((v for v in self.settings.values() if type(v) is options_class), None)
        return found if found is not None else options_class()

    @property
    def expect_sparsity(self) -> float | None:  # gate.check/v1 readers find these at the top level
        return self.of(SparsityOptions).expected

    @property
    def sparsity_tolerance(self) -> float:
        return self.of(SparsityOptions).tolerance

    @property
    def extra(self) -> dict:
        """Every measurement's options by name (defaults included), and the cache switch: as gate.check/v1 has them."""
        chosen = {m.name: self.of(m.options) for m in measurements() if flags(m.options)}
        return {**chosen, "cache": self.cache}

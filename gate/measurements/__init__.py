"""The measurements `gate check` runs; each registers once (gate.measurements.registry)."""

from gate.measurements.registry import Measurement, register_measurement

__all__ = ["Measurement", "register_measurement"]

"""Measurements: pure functions over checkpoints or model handles, returning frozen dataclasses."""

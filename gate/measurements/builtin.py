"""The built-in measurements, registered through the same public hook an extension uses."""

from __future__ import annotations

from gate.measurements.options import BiasOptions, LatencyOptions, PerplexityOptions, SparsityOptions
from gate.measurements.registry import Measurement, register_measurement

register_measurement(Measurement(
    "sparsity", "gate.measurements.base:SparsityStep", "checkpoint", "Sparsity",
    metrics=("sparsity.actual", "sparsity.declared_gap"), options=SparsityOptions))
register_measurement(Measurement(
    "size", "gate.measurements.base:SizeStep", "checkpoint", "Size on disk",
    metrics=("size.ratio", "size.sparse_saving")))
register_measurement(Measurement(
    "latency", "gate.measurements.latency_step:LatencyStep", "model", "Latency",
    metrics=("latency.ratio", "latency.prefill_ratio", "latency.decode_ratio", "latency.{role}_mean_s",
             "latency.{role}_median_s", "latency.{role}_prefill_tokens_per_s", "latency.{role}_decode_tokens_per_s",
             "latency.{role}_repeat_cv", "latency.{role}_peak_memory_bytes"),
    options=LatencyOptions))
register_measurement(Measurement(
    "perplexity", "gate.measurements.perplexity_step:PerplexityStep", "model", "Perplexity",
    metrics=("perplexity.base", "perplexity.candidate", "perplexity.ratio", "bits_per_byte.base",
             "bits_per_byte.candidate", "bits_per_byte.ratio"),
    options=PerplexityOptions))
register_measurement(Measurement(
    "bias", "gate.measurements.bias.step:BiasStep", "model", "Bias on BBQ",
    metrics=("bias.srs", "bias.srs.change", "bias.srs.relative_change", "bias.usr.change",
             "bias.accuracy_amb.change", "bias.accuracy_dis.change", "bias.s_amb.change", "bias.s_dis.change",
             "bias.soft_srs.change", "bias.emergence_rate", "bias.parse_failure_rate"),
    options=BiasOptions))

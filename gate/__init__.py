"""gate: a validation gate for compressed LLM checkpoints."""

__version__ = "0.1.0"

"""gate: a validation gate for compressed LLM checkpoints."""

__version__ = "0.1.0"
# The name to install from PyPI: `gate` there is an unrelated project (docs/security.md).
DISTRIBUTION = "gate-llm"

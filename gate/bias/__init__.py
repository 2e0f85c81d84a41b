"""Bias on BBQ: data, targets, prompts, elicitation and metrics."""

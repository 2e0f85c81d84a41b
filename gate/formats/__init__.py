"""Output formats: each turns a check result into text, computing nothing."""

"""`make bench`: benchmarks that print ratios measured side by side on this machine."""

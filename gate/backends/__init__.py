"""Model runtimes behind one small interface (see `base.ModelHandle`)."""

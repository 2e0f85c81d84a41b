"""Policies: the schema, the shipped YAML files and their loading."""

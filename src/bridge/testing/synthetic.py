"""The built-in ``synthetic`` adapter (being written)."""

"""Core's own report formats (being written)."""

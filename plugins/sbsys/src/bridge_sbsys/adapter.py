"""The sbsys adapter plugin: registers nothing until the adapter is written (its own issue)."""

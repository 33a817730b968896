"""The csc_social adapter plugin: registers nothing until the adapter is written (its own issue)."""

"""Services over the store: each takes a :class:`bridge.store.Store` and returns typed results."""

"""bridge adapter plugin for DUBU."""

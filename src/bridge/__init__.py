"""bridge: one store and one set of services over DUBU, CSC Social and SB-SYS."""

from bridge.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]

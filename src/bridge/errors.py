"""Errors that end a command with a clear message instead of a traceback.

Messages never hold person data: raise them with keys and references, not CPR numbers.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error bridge reports to a person; ``exit_code`` is the one README.md lists."""

    exit_code = 1


class ConfigError(BridgeError):
    """The configuration or the command line is wrong (exit 2)."""

    exit_code = 2


class PluginError(BridgeError):
    """A plugin registered something core cannot accept (exit 2)."""

    exit_code = 2


class AdapterError(BridgeError):
    """A source could not be read; the run fails (exit 1)."""


class AuthError(AdapterError):
    """The source refused our credentials. Not retried."""


class SourceUnavailable(AdapterError):
    """The source kept failing after the bounded retries."""


class ResponseTooLarge(AdapterError):
    """An answer was larger than the client accepts; it was refused while it streamed in.

    Adapters that read one record per request catch it and quarantine that record with the
    reason; uncaught, it fails the run like any other :class:`AdapterError`.
    """


class LockHeld(BridgeError):
    """Another run of the same source holds the lock (exit 3)."""

    exit_code = 3

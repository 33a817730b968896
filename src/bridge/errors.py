"""Errors that end a command with a clear message instead of a traceback.

Messages never hold person data: raise them with keys and references, not CPR numbers.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError, StatementError

from bridge.privacy import redact


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


_STATEMENT = re.compile(r"(?is)^\s*(insert\s+into|update|delete\s+from|select\b.*?\bfrom)\s+\"?(\w+)")


def store_error_message(exc: BaseException) -> str:
    """What a database error says, built by bridge: the statement's verb and table, the error class and SQLSTATE.

    A driver's own text is left out on purpose: it can quote bound parameters and values
    (person keys, family keys, birth dates: ``Key (child_key)=(…)``, ``invalid input syntax:
    "…"``) and must never reach stderr, a log line or the run ledger.
    """
    orig = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    code = f", {sqlstate}" if sqlstate else ""
    statement = exc.statement if isinstance(exc, StatementError) else None
    match = _STATEMENT.match(statement or "")
    where = f" {match.group(1).split()[0].upper()} on {match.group(2)}" if match else " a statement"
    return f"the store refused{where} ({type(orig).__name__}{code})"


def _is_database_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return isinstance(exc, DBAPIError) or module.startswith(("psycopg", "sqlite3"))


def describe_error(exc: BaseException) -> str:
    """A one-line message about ``exc`` that is safe to print, log and keep in the run ledger.

    bridge's own errors say what they say; a database error is described by
    :func:`store_error_message`; anything else by its class and text. CPR numbers and secrets
    are hidden in all of them (:func:`bridge.privacy.redact`).
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, BridgeError):
        return redact(str(exc))
    if _is_database_error(exc):
        return store_error_message(exc)
    return redact(f"{type(exc).__name__}: {exc}")

"""Exceptions, and the one place where SQLSTATE codes become them.

Every error the database raises with an ES code, and insufficient privilege
(42501), surfaces as a subclass of EventStoreError; other database errors
pass through as psycopg errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


class EventStoreError(Exception):
    """Base class of every pg_eventstore error."""

    sqlstate: str | None = None

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        parts = [self.message]
        if self.detail:
            parts.append(f"DETAIL: {self.detail}")
        if self.hint:
            parts.append(f"HINT: {self.hint}")
        return "\n".join(parts)


class ConcurrencyError(EventStoreError):
    """ES001: the aggregate is not at the expected version."""

    sqlstate = "ES001"
    # DETAIL is "stream <uuid>, expected version <n|NULL>, actual version <n>"
    _DETAIL = re.compile(
        r"stream (?P<stream>\S+), expected version (?P<expected>-?\d+), actual version (?P<actual>-?\d+)"
    )

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, detail=detail, hint=hint)
        match = self._DETAIL.search(detail or "")
        self.aggregate_id: str | None = match["stream"] if match else None
        self.expected_version: int | None = int(match["expected"]) if match else None
        self.actual_version: int | None = int(match["actual"]) if match else None


class InvalidEventError(EventStoreError):
    """ES002: an invalid argument or malformed event; nothing was written."""

    sqlstate = "ES002"


class UnknownTypeError(EventStoreError):
    """ES003: unknown aggregate type or projection."""

    sqlstate = "ES003"


class ImmutableEventError(EventStoreError):
    """ES004: events cannot be updated, deleted or truncated."""

    sqlstate = "ES004"


class EventIdConflictError(EventStoreError):
    """ES005: an event_id is already stored with other content."""

    sqlstate = "ES005"


class RestoreNotFinishedError(EventStoreError):
    """ES006: the database was restored into a new cluster; run eventstore.after_restore()."""

    sqlstate = "ES006"


class InsufficientPrivilegeError(EventStoreError):
    """42501: the session's role lacks a grant the call needs.

    The database's own hint is kept when it sends one; otherwise the hint names
    the three roles, since a missing role grant is by far the usual cause.
    """

    sqlstate = "42501"
    ROLES_HINT = (
        "grant the login role the eventstore role the call needs: eventstore_reader (read the log and the"
        " status), eventstore_writer (also append and run projections) or eventstore_admin (also register"
        " aggregate types and projections, rebuild, after_restore)"
    )

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, detail=detail, hint=hint or self.ROLES_HINT)


ERRORS_BY_SQLSTATE: dict[str, type[EventStoreError]] = {
    cls.sqlstate: cls
    for cls in (
        ConcurrencyError,
        InvalidEventError,
        UnknownTypeError,
        ImmutableEventError,
        EventIdConflictError,
        RestoreNotFinishedError,
        InsufficientPrivilegeError,
    )
    if cls.sqlstate is not None
}


def from_psycopg(error: psycopg.Error) -> EventStoreError | None:
    """The EventStoreError for a database error with an ES code or 42501, else None."""
    diag = error.diag
    cls = ERRORS_BY_SQLSTATE.get(diag.sqlstate or "")
    if cls is None:
        return None
    return cls(diag.message_primary or str(error), detail=diag.message_detail, hint=diag.message_hint)


@contextmanager
def wrap_errors() -> Iterator[None]:
    """Re-raise database errors with an ES code (or 42501) as their EventStoreError."""
    try:
        yield
    except psycopg.Error as error:
        mapped = from_psycopg(error)
        if mapped is None:
            raise
        raise mapped from error

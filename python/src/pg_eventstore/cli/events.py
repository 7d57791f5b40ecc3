"""Event commands: append, events, feed, state, stats."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from pg_eventstore.cli._common import (
    DsnOption,
    cell,
    connect,
    console,
    err_console,
    fail,
    json_text,
    print_data,
    reported_errors,
)
from pg_eventstore.models import FeedPosition, RecordedEvent
from pg_eventstore.store import ANY_VERSION, NO_STREAM, EventStore

BUCKETS = ("minute", "hour", "day", "week", "month", "year")


def parse_expected(text: str) -> int | None:
    """--expected: 'any' (no check), 'new' (must not exist, -1) or a version N >= 0."""
    word = text.strip().lower()
    if word == "any":
        return ANY_VERSION
    if word == "new":
        return NO_STREAM
    try:
        version = int(word)
    except ValueError:
        raise typer.BadParameter(f"expected N (a version >= 0), 'new' or 'any'; got {text!r}") from None
    if version < NO_STREAM:
        raise typer.BadParameter(f"a version is >= 0 (or -1, the same as 'new'); got {version}")
    return version


def parse_event_option(text: str) -> dict[str, Any]:
    """--event TYPE=JSON: an event type and its payload, a JSON object ('TYPE' alone: an empty payload)."""
    event_type, separator, payload_text = text.partition("=")
    if not event_type.strip():
        example = 'OrderShipped=\'{"carrier": "DHL"}\''
        raise typer.BadParameter(f"an event reads TYPE=JSON, e.g. {example}; got {text!r}")
    payload: Any = {}
    if separator:
        try:
            payload = json.loads(payload_text)
        except json.JSONDecodeError as error:
            raise typer.BadParameter(f"the payload of {event_type} is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise typer.BadParameter(f"the payload of {event_type} must be a JSON object; got {payload_text}")
    return {"event_type": event_type.strip(), "payload": payload}


def events_from_stdin() -> list[Any]:
    """A JSON array of events (or one event object) from stdin, as append_events takes them."""
    text = sys.stdin.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"stdin is not JSON: {error}")
    events = document if isinstance(document, list) else [document]
    if not events:
        fail("stdin holds an empty list: nothing to append")
    return events


def event_json(event: RecordedEvent) -> dict[str, Any]:
    """A stored event as one JSON object (a line of --json output)."""
    return {
        "id": event.id,
        "event_id": event.event_id,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": event.payload,
        "metadata": event.metadata,
        "occurred_at": event.occurred_at,
        "feed_position": str(event.feed_position),
    }


def parse_time(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 time; without a time zone it is this machine's local time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{name} is not an ISO 8601 time (e.g. 2025-01-31T12:00:00+00:00): {text!r}") from None
    return moment if moment.utcoffset() is not None else moment.astimezone()


def append(
    aggregate_type: Annotated[str, typer.Argument(metavar="TYPE", help="The aggregate type, e.g. Order.")],
    aggregate_id: Annotated[UUID, typer.Argument(metavar="ID", help="The aggregate id (a uuid).")],
    expected: Annotated[
        str,
        typer.Option(
            "--expected",
            metavar="N|new|any",
            help="The version the aggregate must be at: N (>= 0), 'new' (it must not exist) or 'any' (no check).",
        ),
    ],
    dsn: DsnOption,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            metavar="TYPE=JSON",
            help="An event: its type and its payload (a JSON object). Repeat for several events, appended "
            "in order. Without --event, a JSON array of events is read from stdin.",
        ),
    ] = None,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", metavar="JSON", help="Metadata (a JSON object) for every --event."),
    ] = None,
) -> None:
    """Append events to an aggregate, atomically, and print the stored versions.

    Each line printed is: version, event type, event id, feed position. A version conflict (ES001) exits 1.

    stdin takes the format of eventstore.append_events(): [{"event_type": ..., "payload": {...},
    "metadata": {...}, "event_id": "uuid"}, ...] (metadata and event_id optional; event ids make a retry
    idempotent).
    """
    expected_version = parse_expected(expected)
    if event:
        events = [parse_event_option(text) for text in event]
        if metadata is not None:
            try:
                meta = json.loads(metadata)
            except json.JSONDecodeError as error:
                raise typer.BadParameter(f"not JSON: {error}", param_hint="--metadata") from None
            for item in events:
                item["metadata"] = meta
    else:
        if sys.stdin.isatty():
            raise typer.BadParameter("give --event TYPE=JSON, or pipe a JSON array of events on stdin")
        if metadata is not None:
            raise typer.BadParameter("--metadata goes with --event; on stdin, give each event its metadata")
        events = events_from_stdin()
    with connect(dsn) as conn, reported_errors():
        stored = EventStore(conn).append(aggregate_type, aggregate_id, events, expected_version=expected_version)
    for recorded in stored:
        print_data(f"{recorded.event_version}\t{recorded.event_type}\t{recorded.event_id}\t{recorded.feed_position}")


def events(
    aggregate_id: Annotated[UUID, typer.Argument(metavar="ID", help="The aggregate id (a uuid).")],
    dsn: DsnOption,
    from_version: Annotated[int, typer.Option("--from-version", min=0, help="The first version to show.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event and line, instead of a table.")
    ] = False,
) -> None:
    """Show an aggregate's events in version order (its history)."""
    with connect(dsn) as conn, reported_errors():
        history = EventStore(conn).load_events(aggregate_id, from_version)
    if as_json:
        for recorded in history:
            print_data(json_text(event_json(recorded)))
        return
    if not history:
        err_console.print(f"aggregate {aggregate_id} has no events from version {from_version} on")
        return
    title = f"{history[0].aggregate_type} {aggregate_id}"
    table = Table("version", "event type", "occurred at", "payload", "metadata", title=title)
    for recorded in history:
        table.add_row(
            cell(recorded.event_version),
            cell(recorded.event_type),
            cell(recorded.occurred_at),
            cell(recorded.payload),
            cell(recorded.metadata),
        )
    console.print(table)


def feed_line(event: RecordedEvent, as_json: bool) -> str:
    if as_json:
        return json_text(event_json(event))
    return (
        f"{event.feed_position}\t{event.occurred_at.isoformat(timespec='milliseconds')}\t{event.aggregate_type}\t"
        f"{event.aggregate_id}\tv{event.event_version}\t{event.event_type}\t{json_text(event.payload)}"
    )


def feed(
    dsn: DsnOption,
    from_position: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="POSITION",
            help="Start right after this feed position, '(feed_key,id)' as printed before (default: the start).",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new events, like tail -f (Ctrl-C stops).")
    ] = False,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", "-t", metavar="EVENT_TYPE", help="Only this event type (repeatable).")
    ] = None,
    aggregate_type: Annotated[
        list[str] | None,
        typer.Option("--aggregate-type", metavar="TYPE", help="Only aggregates of this type (repeatable)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=1, help="Stop after this many events (default: 100, or no limit with --follow)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event and line.")] = False,
) -> None:
    """Print the global feed in commit order, each line starting with its position.

    Lines: position, occurred at, aggregate type, aggregate id, version, event type, payload. The feed is
    gap-free: pass the last position printed to --from to resume exactly after it (the last position is
    also printed on stderr at the end).
    """
    if from_position is not None:
        try:
            FeedPosition.parse(from_position)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--from") from None
    wanted = limit if limit is not None else (None if follow else 100)
    types = event_type or None
    aggregate_types = aggregate_type or None
    last: str | None = from_position
    printed = 0
    with connect(dsn) as conn, reported_errors():
        store = EventStore(conn)
        if follow:
            stop = threading.Event()
            stream: Iterable[RecordedEvent] = store.subscribe(
                from_position, event_types=types, aggregate_types=aggregate_types, stop=stop
            )
            try:
                for recorded in stream:
                    print_data(feed_line(recorded, as_json))
                    last, printed = str(recorded.feed_position), printed + 1
                    if wanted is not None and printed >= wanted:
                        stop.set()
                        break
            except KeyboardInterrupt:
                stop.set()
        else:
            while wanted is None or printed < wanted:
                page_size = 1000 if wanted is None else min(1000, wanted - printed)
                page = store.read_all(last, page_size, event_types=types, aggregate_types=aggregate_types)
                for recorded in page:
                    print_data(feed_line(recorded, as_json))
                last, printed = (str(page[-1].feed_position), printed + len(page)) if page else (last, printed)
                if len(page) < page_size:
                    break
    if last is not None:
        err_console.print(f"{printed} events; resume with --from '{last}'", markup=False, soft_wrap=True)
    else:
        err_console.print(f"{printed} events", markup=False)


def state(
    aggregate_type: Annotated[str, typer.Argument(metavar="TYPE", help="The registered aggregate type, e.g. Order.")],
    aggregate_id: Annotated[UUID, typer.Argument(metavar="ID", help="The aggregate id (a uuid).")],
    dsn: DsnOption,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIMESTAMP",
            help="The state as of this moment (ISO 8601; without a time zone: this machine's local time).",
        ),
    ] = None,
    at_version: Annotated[
        int | None, typer.Option("--version", min=0, help="The state right after this version.")
    ] = None,
) -> None:
    """Print an aggregate's state, as its registered SQL fold computes it, as JSON.

    The current state by default; --at or --version for an earlier one (a temporal query). Exits 1 when the
    aggregate has no event at that point.
    """
    if at is not None and at_version is not None:
        raise typer.BadParameter("give --at or --version, not both")
    moment = parse_time("--at", at)
    with connect(dsn) as conn, reported_errors():
        store = EventStore(conn)
        if moment is None and at_version is None:
            loaded = store.load_aggregate(aggregate_type, aggregate_id)
        else:
            loaded = store.state_at(aggregate_type, aggregate_id, at=moment, version=at_version)
    if loaded is None:
        where = ""
        if moment is not None:
            where = f" at {moment.isoformat()}"
        elif at_version is not None:
            where = f" at version {at_version}"
        fail(f"{aggregate_type} {aggregate_id} has no state{where}: no such aggregate or event")
    print_data(
        json_text(
            {
                "aggregate_type": aggregate_type,
                "aggregate_id": aggregate_id,
                "version": loaded.version,
                "state": loaded.state,
            },
            indent=2,
        )
    )


def stats(
    dsn: DsnOption,
    from_time: Annotated[
        str | None, typer.Option("--from", metavar="TIMESTAMP", help="Events at or after this time (ISO 8601).")
    ] = None,
    to_time: Annotated[
        str | None, typer.Option("--to", metavar="TIMESTAMP", help="Events before this time (ISO 8601).")
    ] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help=f"The time bucket: {', '.join(BUCKETS)}.", case_sensitive=False)
    ] = "day",
) -> None:
    """Count events per time bucket and event type (newest bucket first)."""
    if bucket.lower() not in BUCKETS:
        raise typer.BadParameter(f"one of {', '.join(BUCKETS)}; got {bucket!r}", param_hint="--bucket")
    start, end = parse_time("--from", from_time), parse_time("--to", to_time)
    with connect(dsn) as conn, reported_errors():
        counts = EventStore(conn).event_counts(start, end, bucket.lower())
    table = Table("bucket", "event type", "events", title=f"events per {bucket.lower()}")
    for count in counts:
        table.add_row(cell(count.bucket), cell(count.event_type), cell(f"{count.event_count:,}"))
    console.print(table)
    console.print(f"total: {sum(count.event_count for count in counts):,} events", markup=False)

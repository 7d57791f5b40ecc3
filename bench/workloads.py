"""The workloads as data: every line of the results table, the pgbench scripts (bench/pgbench/) each side
runs, the -D values they take and what must exist before a timed run. The sections measure these."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import CORE_DB, EVERY_APPEND_DB, FEED_DB, MESSAGE_DB_DB, NO_NOTIFY_DB
from bench.measure import Goal, Result

SCRIPTS = Path(__file__).resolve().parent / "pgbench"

# An OrderPlaced payload as the seed's place_order writes it: 354 bytes of compact JSON.
PLACED_PAYLOAD: dict[str, Any] = {
    "orderNumber": "ORD-20250101-4F2A9C1B",
    "customerId": "6f1c2b7e-3d4a-4f8b-9c2d-1e5f6a7b8c9d",
    "lineItems": [
        {"productId": "p-1001", "sku": "SKU-1001", "name": "Espresso beans 1kg", "quantity": 2, "unitPrice": 24.5},
    ],
    "shippingAddress": {"line1": "12 Harbour Road", "city": "Lisbon", "country": "PT", "postalCode": "1100-001"},
    "subtotal": 49.0,
    "shippingCost": 4.95,
    "total": 53.95,
}
PAYLOAD_JSON = json.dumps(PLACED_PAYLOAD)


def events_json(event_type: str, count: int) -> str:
    """count events of one type with the payload, as append_events() takes them (a JSON array)."""
    return json.dumps([{"event_type": event_type, "payload": PLACED_PAYLOAD}] * count)


CEILING_COLUMNS = (
    "event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key"
)

# What must exist before a timed run, one statement per aggregate of the run (%(aggregate)s), with
# %(events)s and %(payload)s those of one OrderPlaced event: the aggregate at version 0.
FIRST_APPEND = "SELECT eventstore.append_events('Order', %(aggregate)s, -1, %(events)s)"
FIRST_CEILING_ROW = (
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS}) VALUES (gen_random_uuid(), 'Order', %(aggregate)s,"
    " 'OrderPlaced', 0, %(payload)s::jsonb, '{}'::jsonb, clock_timestamp(), pg_current_xact_id()::text::bigint)"
)
FIRST_STREAM_ROW = (
    "INSERT INTO bench.ceiling_streams (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at)"
    " VALUES (%(aggregate)s, 'Order', 0, 0, clock_timestamp())"
)
START_VALUES = {"events": events_json("OrderPlaced", 1), "payload": PAYLOAD_JSON}

# W4 counts its successful appends from the versions its aggregates reached (%(aggregates)s).
STREAM_VERSIONS = "SELECT sum(s.version) FROM eventstore.streams AS s WHERE s.aggregate_id = ANY(%(aggregates)s)"
CEILING_VERSIONS = (
    "SELECT sum(m.v) FROM (SELECT max(c.event_version) AS v FROM bench.ceiling_events AS c"
    " WHERE c.aggregate_id = ANY(%(aggregates)s) GROUP BY c.aggregate_id) AS m"
)


@dataclass(frozen=True)
class Script:
    """One side of a comparison: a pgbench script of bench/pgbench/ and the -D values it takes.

    aggregates: which aggregates a run uses, each named by the run's tag (-D run):
    "none"; "own", one per client, md5(tag || '-' || client_id)::uuid; "contended", 4,
    md5(tag || '-w4-' || a)::uuid. start: the statements that create each of them before the
    run. successes: for "contended", the query that counts the successful appends. text: what
    a ceiling is, for the results' list of ceilings. user: the role pgbench connects as.
    """

    file: str
    variables: Mapping[str, str] = field(default_factory=dict)
    aggregates: str = "none"
    start: tuple[str, ...] = ()
    successes: str | None = None
    events: int = 1
    text: str = ""
    user: str = "postgres"

    @property
    def path(self) -> Path:
        return SCRIPTS / self.file


PAYLOAD = {"payload": PAYLOAD_JSON}
NOTIFY = {**PAYLOAD, "notify": "true"}
NO_NOTIFY = {**PAYLOAD, "notify": "false"}
APPEND_ONE = Script("append-new.sql", {"events": events_json("OrderPlaced", 1)})
INSERT_ONE = Script("insert-new.sql", PAYLOAD, text="INSERT of the same row")
CONTRACT_ONE = Script(
    "contract-new.sql",
    {**NOTIFY, "count": "1"},
    text="one statement: INSERT of the stream row and the event, pg_notify()",
)
APPEND_TEN = Script("append-new.sql", {"events": events_json("OrderPlaced", 10)}, events=10)
INSERT_TEN = Script("insert-new-10.sql", PAYLOAD, events=10, text="one 10-row INSERT")
CONTRACT_TEN = Script(
    "contract-new.sql",
    {**NOTIFY, "count": "10"},
    events=10,
    text="one statement: INSERT of the stream row and the 10 events, pg_notify()",
)
APPEND_NEXT = Script("append-next.sql", {"events": events_json("OrderShipped", 1)}, "own", (FIRST_APPEND,))
INSERT_NEXT = Script("insert-next.sql", PAYLOAD, "own", (FIRST_CEILING_ROW,), text="INSERT of the next version")
CONTRACT_NEXT = Script(
    "contract-next.sql",
    NOTIFY,
    "own",
    (FIRST_CEILING_ROW, FIRST_STREAM_ROW),
    text="one statement: UPDATE of the stream row from the expected version, INSERT of the event, pg_notify()",
)
APPEND_CONTENDED = Script(
    "contended-append.sql", {"events": events_json("OrderShipped", 1)}, "contended", (FIRST_APPEND,), STREAM_VERSIONS
)
INSERT_CONTENDED = Script(
    "contended-insert.sql",
    PAYLOAD,
    "contended",
    (FIRST_CEILING_ROW,),
    CEILING_VERSIONS,
    text="INSERT ... ON CONFLICT DO NOTHING",
)
# Both sides of the inline-projection overhead: with the Order projection inline, and without.
APPEND_UNIQUE_ORDER = Script("append-unique-order.sql", PAYLOAD, text="the same appends with no inline projection")
# Diagnostics: the W1 ceiling with a NOTIFY; the contract ceilings without theirs.
INSERT_NOTIFY = Script("insert-new-notify.sql", PAYLOAD)
INSERT_STREAM = Script("contract-new.sql", {**NO_NOTIFY, "count": "1"})
INSERT_NEXT_STREAM = Script("contract-next.sql", NO_NOTIFY, "own", (FIRST_CEILING_ROW, FIRST_STREAM_ROW))
# The read scripts take -D aggregate, given by the section that built the aggregates.
LOAD_EVENTS = Script("load-events.sql")
SELECT_EVENTS = Script("select-events.sql", text="SELECT ... WHERE aggregate_id ORDER BY event_version")
SELECT_ALL_EVENTS = Script("select-events.sql", text="plain SELECT of all the aggregate's events")
LOAD_AGGREGATE = Script("load-aggregate.sql", {"type": "Order"})
LOAD_AGGREGATE_NO_SNAPSHOTS = Script("load-aggregate.sql", {"type": "OrderNoSnapshots"})
SELECT_SNAPSHOT_AND_AFTER = Script(
    "select-snapshot-and-after.sql", text="plain SELECT of the latest snapshot and the events after it"
)


@dataclass(frozen=True)
class Workload:
    """One line of the results table. The label may hold {fields} the section fills in.

    ours and ceiling: the pgbench scripts of a SQL-level workload, run with `clients` clients
    in `db`; a unit of ms measures the average latency for BENCH_SECONDS / 4 (at least 2 s),
    events/s the throughput for BENCH_SECONDS. Without scripts the section measures in Python
    and ceiling_text says what its ceiling is.
    """

    label: str
    ours: Script | None = None
    ceiling: Script | None = None
    goal: Goal | None = None
    unit: str = "events/s"
    clients: int = 8
    db: str = CORE_DB
    ceiling_text: str = ""
    note: str = ""

    def result(
        self, runs: list[float], ceiling_runs: list[float] | None = None, note: str = "", **fields: Any
    ) -> Result:
        text = self.ceiling.text if self.ceiling else self.ceiling_text
        return Result(self.label.format(**fields), self.unit, runs, ceiling_runs, text, self.goal, note or self.note)


# --- the table, in the order of its lines -------------------------------------------------------------

AT_LEAST_080 = Goal("ratio_at_least", 0.8)

CORE_WRITES = (
    Workload("W1 append 1 event, new aggregate, 1 client", APPEND_ONE, INSERT_ONE, clients=1),
    Workload("W1 append 1 event, new aggregate, 8 clients", APPEND_ONE, INSERT_ONE, AT_LEAST_080),
    Workload("W1 at 8 clients against the contract ceiling", APPEND_ONE, CONTRACT_ONE),
    Workload(
        "W2 append 1 event, expected version, 8 clients on their own aggregates", APPEND_NEXT, INSERT_NEXT, AT_LEAST_080
    ),
    Workload("W2 against the contract ceiling", APPEND_NEXT, CONTRACT_NEXT),
    Workload(
        "W3 append 10 events per call, new aggregate, 8 clients", APPEND_TEN, INSERT_TEN, Goal("ratio_at_least", 0.7)
    ),
    Workload("W3 against the contract ceiling", APPEND_TEN, CONTRACT_TEN),
    Workload("W4 8 clients contending on 4 aggregates (successful appends)", APPEND_CONTENDED, INSERT_CONTENDED),
)
# Measured with the W4 line above.
W4_CONFLICT_RATE = Workload(
    "W4 conflict rate (ES001 / attempts)", unit="%", ceiling_text="unique violations avoided by ON CONFLICT / attempts"
)

R1 = Workload(
    "R1 load_events, one {size:,}-event aggregate", LOAD_EVENTS, SELECT_EVENTS, Goal("ratio_at_most", 1.2), "ms", 1
)


def load_with_snapshots(size: int) -> Workload:
    """load_aggregate with snapshots every 50; the goal is on 10,000 events."""
    goal = Goal("at_most", 2.0) if size == 10_000 else None
    label = f"load_aggregate, {size:,} events, snapshots every 50"
    return Workload(label, LOAD_AGGREGATE, SELECT_SNAPSHOT_AND_AFTER, goal, "ms", 1)


LOAD_WITHOUT_SNAPSHOTS = Workload(
    "load_aggregate, {size:,} events, no snapshots", LOAD_AGGREGATE_NO_SNAPSHOTS, SELECT_ALL_EVENTS, None, "ms", 1
)
LOAD_FLATNESS = Workload(
    "load_aggregate flatness: {largest:,} / 1,000 events, snapshots",
    goal=Goal("at_most", 1.5),
    unit="x",
    note="ratio of the medians above",
)

# Measured in Python (sections/python_client.py): EventStore over a ConnectionPool, threads calling in a
# loop; a new aggregate per call, then the next version of the thread's own aggregate.
PYTHON_CLIENT = (
    Workload(
        "Python EventStore.append, new aggregate, {threads} thread{plural}",
        goal=AT_LEAST_080,
        ceiling_text="psycopg INSERT ... RETURNING * over the same pool",
    ),
    Workload(
        "Python EventStore.append, expected version, {threads} thread{plural}, own aggregates",
        goal=AT_LEAST_080,
        ceiling_text="psycopg INSERT ... RETURNING * of the next version over the same pool",
    ),
)

# Measured in Python (sections/feed.py): pages read one statement each, jsonb loaded as text.
R2 = Workload(
    "R2 read_all catch-up, {events:,} events, pages of 1,000",
    goal=AT_LEAST_080,
    ceiling_text="keyset SELECT ... WHERE (feed_key, id) > ... ORDER BY feed_key, id LIMIT 1000",
)

# Measured in Python (sections/projections.py): rebuild_projection() against one ordered SELECT.
REBUILD = Workload(
    "rebuild_projection of the Order projection, {events:,} events",
    goal=Goal("at_least", 50_000),
    ceiling_text="the handler called straight over one ordered SELECT of the log",
)
# The same script on both sides: ours with the Order projection registered inline, the ceiling without.
INLINE_OVERHEAD = Workload(
    "append 1 event with the Order projection inline, 8 clients",
    APPEND_UNIQUE_ORDER,
    APPEND_UNIQUE_ORDER,
    Goal("ratio_at_least", 0.7),
    db=FEED_DB,
    note="overhead = 1 - ratio",
)
LAG_P50 = Workload("async projection lag p50, commit to projection commit", unit="ms")
LAG_P99 = Workload("async projection lag p99, commit to projection commit", goal=Goal("at_most", 20.0), unit="ms")
LAG_P99_UNRELATED = Workload(
    "async projection lag p99 with an unrelated transaction open throughout",
    goal=Goal("ratio_at_most", 2.0),
    unit="ms",
    ceiling_text="the lag p99 without it, same run",
)


# --- peers (sections/peers.py): the same workloads on Message DB and eventsourcing ---------------------------

# Message DB is called the way its clients call it: write_message() as the role `message_store` that its
# install.sh creates (limited to the public interface), in its own database, all streams of one category
# (`order-<uuid>`), as ours all go to one aggregate type.
FIRST_MESSAGE = (
    "SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || %(aggregate)s::text,"
    " 'OrderPlaced', %(payload)s::jsonb, '{}'::jsonb, -1)"
)
MESSAGE_DB_ONE = Script("message-db-new.sql", PAYLOAD, user="message_store")
MESSAGE_DB_NEXT = Script("message-db-next.sql", PAYLOAD, "own", (FIRST_MESSAGE,), user="message_store")
MESSAGE_DB_TEN = Script("message-db-new-10.sql", PAYLOAD, events=10, user="message_store")


@dataclass(frozen=True)
class Side:
    """One column of the peers table at the SQL level: a pgbench script in its database."""

    script: Script
    db: str = CORE_DB


@dataclass(frozen=True)
class PeerWorkload:
    """One row of the peers table: a workload every peer that supports it runs, with `clients` clients.

    shape: "new" (W1, 1 event to a new stream), "next" (W2, 1 event to the client's own stream with its
    expected version) or "ten" (W3, 10 events to a new stream in one call). sql: the pgbench side of each
    column measured at the SQL level; the Python level builds its sides from the shape (sections/peers.py).
    """

    label: str
    shape: str
    clients: int
    sql: Mapping[str, Side]

    @property
    def events(self) -> int:
        return 10 if self.shape == "ten" else 1


# The columns of the peers table, in order; the first is the bare ceiling every ratio is to.
CEILING = "bare ceiling"
OURS = "pg_eventstore"
MESSAGE_DB = "Message DB"
EVENTSOURCING = "eventsourcing"
PEER_COLUMNS = (CEILING, OURS, MESSAGE_DB, EVENTSOURCING)

PEERS = (
    PeerWorkload(
        "W1 1 event, new stream, 1 client",
        "new",
        1,
        {CEILING: Side(INSERT_ONE), OURS: Side(APPEND_ONE), MESSAGE_DB: Side(MESSAGE_DB_ONE, MESSAGE_DB_DB)},
    ),
    PeerWorkload(
        "W1 1 event, new stream, 8 clients",
        "new",
        8,
        {CEILING: Side(INSERT_ONE), OURS: Side(APPEND_ONE), MESSAGE_DB: Side(MESSAGE_DB_ONE, MESSAGE_DB_DB)},
    ),
    PeerWorkload(
        "W2 1 event, expected version, 8 clients on their own streams",
        "next",
        8,
        {CEILING: Side(INSERT_NEXT), OURS: Side(APPEND_NEXT), MESSAGE_DB: Side(MESSAGE_DB_NEXT, MESSAGE_DB_DB)},
    ),
    PeerWorkload(
        "W3 10 events per call, new stream, 8 clients",
        "ten",
        8,
        {CEILING: Side(INSERT_TEN), OURS: Side(APPEND_TEN), MESSAGE_DB: Side(MESSAGE_DB_TEN, MESSAGE_DB_DB)},
    ),
)


# --- diagnostics (not our configuration) ----------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A script run in one database, named for the diagnostics."""

    name: str
    script: Script
    db: str = CORE_DB


# Each group runs at 8 clients in rotating order; every variant is compared with the first.
DIAGNOSTICS: tuple[tuple[str, tuple[Variant, ...]], ...] = (
    (
        "new aggregate, 8 clients",
        (
            Variant("plain INSERT (the W1 ceiling)", INSERT_ONE),
            Variant("plain INSERT + pg_notify() in the same transaction", INSERT_NOTIFY),
            Variant("plain INSERT + a streams row INSERT", INSERT_STREAM),
            Variant("append_events (W1)", APPEND_ONE),
            Variant("append_events without the NOTIFY trigger (copy database)", APPEND_ONE, NO_NOTIFY_DB),
        ),
    ),
    (
        "own aggregates, 8 clients",
        (
            Variant("plain INSERT of the next version (the W2 ceiling)", INSERT_NEXT),
            Variant("plain INSERT + the streams row UPDATE", INSERT_NEXT_STREAM),
            Variant("append_events (W2)", APPEND_NEXT),
            Variant("append_events without the NOTIFY trigger (copy database)", APPEND_NEXT, NO_NOTIFY_DB),
        ),
    ),
)
# The notify modes (eventstore.set_notify_mode) at 8 clients, each shape against its bare ceiling: the
# default in the core database, the others in copy databases switched to them.
NOTIFY_MODES: tuple[tuple[str, tuple[Variant, ...]], ...] = tuple(
    (
        f"notify modes, {shape}, 8 clients",
        (
            Variant(f"plain INSERT (the {name} ceiling)", ceiling),
            Variant(f"append_events, notify_mode uncontended (the default, {name})", ours),
            Variant("append_events, notify_mode every_append (0.3.0's NOTIFY)", ours, EVERY_APPEND_DB),
            Variant("append_events, notify_mode off (consumers poll)", ours, NO_NOTIFY_DB),
        ),
    )
    for shape, name, ours, ceiling in (
        ("new aggregate", "W1", APPEND_ONE, INSERT_ONE),
        ("own aggregates", "W2", APPEND_NEXT, INSERT_NEXT),
        ("10 events per call", "W3", APPEND_TEN, INSERT_TEN),
    )
)
WAIT_PROFILES = (
    Variant("append_events, W1 at 8 clients", APPEND_ONE),
    Variant("plain INSERT + pg_notify(), W1 at 8 clients", INSERT_NOTIFY),
    Variant("plain INSERT (ceiling), W1 at 8 clients", INSERT_ONE),
    Variant("append_events without the NOTIFY trigger (copy), W1 at 8 clients", APPEND_ONE, NO_NOTIFY_DB),
    Variant("append_events, notify_mode every_append (copy), W1 at 8 clients", APPEND_ONE, EVERY_APPEND_DB),
)
# At 1 client: ours, then the ceiling.
STATEMENT_PROFILES = (
    ("W1 (new aggregate), 1 client", APPEND_ONE, INSERT_ONE),
    ("W2 (expected version), 1 client", APPEND_NEXT, INSERT_NEXT),
)

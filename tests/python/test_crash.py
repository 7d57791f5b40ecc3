"""Crash durability: the postmaster and every backend are SIGKILLed while 8 writers append.

The cluster is this test's own, with durable settings (fsync and synchronous
commit on): an append the server acknowledged must survive, however the
server dies. After the restart:
- every acknowledged append is stored exactly once; calls whose outcome the
  client never learned (in doubt) are stored whole or not at all;
- versions are dense per aggregate;
- a consumer resuming from its saved feed position reads every event once;
- an async projection catches up to equal the inline one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

import pgcluster
from pg_eventstore import schema
from pg_eventstore.errors import EventStoreError
from pg_eventstore.models import FeedPosition, NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "50"}
WRITERS = 8
LOAD_SECONDS = float(os.environ.get("CRASH_LOAD_SECONDS", "3"))  # make soak runs longer
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h

COPY_HANDLERS = """
CREATE TABLE public.inline_copy (event_id uuid PRIMARY KEY, aggregate_id uuid, event_version integer);
CREATE TABLE public.async_copy (event_id uuid PRIMARY KEY, aggregate_id uuid, event_version integer);
CREATE FUNCTION public.copy_inline(p_event eventstore.domain_events) RETURNS void LANGUAGE sql AS
$$ INSERT INTO public.inline_copy VALUES (p_event.event_id, p_event.aggregate_id, p_event.event_version) $$;
CREATE FUNCTION public.copy_async(p_event eventstore.domain_events) RETURNS void LANGUAGE sql AS
$$ INSERT INTO public.async_copy VALUES (p_event.event_id, p_event.aggregate_id, p_event.event_version) $$;
SELECT eventstore.register_projection('copy_inline', 'public.copy_inline(eventstore.domain_events)', NULL, 'inline');
SELECT eventstore.register_projection('copy_async', 'public.copy_async(eventstore.domain_events)', NULL, 'async');
"""


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[list[uuid.UUID]] = field(default_factory=list)
    in_doubt: list[list[uuid.UUID]] = field(default_factory=list)
    refused: list[list[uuid.UUID]] = field(default_factory=list)


def writer(dsn: str, seed: int, stop: threading.Event, ledger: Ledger) -> None:
    rng = random.Random(seed)
    versions: dict[uuid.UUID, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = EventStore(conn)
        while not stop.is_set():
            if not versions or rng.random() < 0.3:
                aggregate_id, expected = uuid.uuid4(), NO_STREAM
            else:
                aggregate_id = rng.choice(list(versions))
                expected = versions[aggregate_id]
            events = [NewEvent("Tick", {"n": rng.random()}, event_id=uuid.uuid4()) for _ in range(rng.randint(1, 5))]
            ids = [e.event_id for e in events if e.event_id is not None]
            try:
                stored = store.append("Ticker", aggregate_id, events, expected_version=expected)
            except psycopg.OperationalError:
                with ledger.lock:
                    ledger.in_doubt.append(ids)
                return  # the server is gone
            except EventStoreError:
                with ledger.lock:
                    ledger.refused.append(ids)
                continue
            versions[aggregate_id] = stored[-1].event_version
            with ledger.lock:
                ledger.acknowledged.append(ids)


def consumer(dsn: str, stop: threading.Event, seen: list[uuid.UUID], saved: list[FeedPosition]) -> None:
    """Reads the feed and 'saves' its position after each page, until the server dies."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            store = EventStore(conn)
            while not stop.is_set():
                page = store.read_all(saved[-1] if saved else None, 100)
                seen.extend(e.event_id for e in page)
                if page:
                    saved.append(page[-1].feed_position)
    except psycopg.OperationalError:
        return


def become_subreaper() -> None:
    """Adopt orphaned descendants (the daemonized postmaster and, once it dies, its backends), so that
    killed servers can be reaped here: a zombie still 'exists' and would make the restart refuse to start."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def crash(datadir: Path) -> int:
    """SIGKILL the postmaster and all its children (found by parent pid), as a power cut would stop them."""
    postmaster = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_pid(entry) == postmaster
    ]
    for pid in [postmaster, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    for pid in [postmaster, *children]:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.02)
    assert not any(Path(f"/proc/{pid}").exists() for pid in [postmaster, *children]), "killed servers linger"
    return len(children)


def _parent_pid(proc: Path) -> int | None:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_acknowledged_appends_survive_a_crash(report: Any) -> None:
    become_subreaper()
    with pgcluster.throwaway_cluster(settings=DURABLE) as cluster:
        dsn = make_conninfo(cluster.dsn, dbname="postgres")
        with psycopg.connect(dsn, autocommit=True) as conn:
            schema.install(conn)
            conn.execute(COPY_HANDLERS.encode())

        ledger = Ledger()
        stop = threading.Event()
        seen: list[uuid.UUID] = []
        saved: list[FeedPosition] = []
        threads = [threading.Thread(target=writer, args=(dsn, n, stop, ledger)) for n in range(WRITERS)]
        threads.append(threading.Thread(target=consumer, args=(dsn, stop, seen, saved)))
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        killed_children = crash(cluster.datadir)
        stop.set()
        for thread in threads:
            thread.join(30)
        # The consumer's saved position is the last one it stored; what it read after that is read again.
        # The consumer saves its position after each page it has read.
        position = saved[-1] if saved else None

        pgcluster.start(cluster.datadir, cluster.port, DURABLE)
        with psycopg.connect(dsn, autocommit=True) as conn:
            stored = {row[0] for row in conn.execute("SELECT event_id FROM eventstore.domain_events")}
            gaps = conn.execute(
                "SELECT count(*) FROM (SELECT aggregate_id FROM eventstore.domain_events GROUP BY aggregate_id "
                "HAVING count(*) <> max(event_version) + 1 OR min(event_version) <> 0) AS broken"
            ).fetchone()
            store = EventStore(conn)
            resumed: list[uuid.UUID] = []
            while page := store.read_all(position, 1000):
                resumed.extend(e.event_id for e in page)
                position = page[-1].feed_position
            while conn.execute("SELECT eventstore.run_projection('copy_async', 1000)").fetchone() != (0,):
                pass
            inline_copy = conn.execute("SELECT * FROM public.inline_copy ORDER BY event_id").fetchall()
            async_copy = conn.execute("SELECT * FROM public.async_copy ORDER BY event_id").fetchall()

    acknowledged = [i for call in ledger.acknowledged for i in call]
    in_doubt_stored = sum(1 for call in ledger.in_doubt if all(i in stored for i in call))
    in_doubt_lost = sum(1 for call in ledger.in_doubt if not any(i in stored for i in call))
    half_stored = [
        call
        for call in ledger.acknowledged + ledger.in_doubt + ledger.refused
        if 0 < sum(i in stored for i in call) < len(call)
    ]
    before_crash = seen
    report(
        f"crash: SIGKILL of the postmaster and {killed_children} children under {WRITERS} writers: "
        f"{len(ledger.acknowledged)} acknowledged appends ({len(acknowledged)} events), "
        f"{len(ledger.in_doubt)} in doubt ({in_doubt_stored} stored whole, {in_doubt_lost} not stored), "
        f"{len(ledger.refused)} refused; {len(stored)} events stored; consumer read {len(before_crash)} "
        f"before and {len(resumed)} after the restart"
    )
    assert len(ledger.acknowledged) > 100, "too little traffic before the crash"
    assert all(i in stored for i in acknowledged), "an acknowledged append was lost"
    assert not half_stored
    assert in_doubt_stored + in_doubt_lost == len(ledger.in_doubt)
    assert not any(i in stored for call in ledger.refused for i in call)
    assert gaps == (0,)
    feed = before_crash + resumed
    assert len(feed) == len(set(feed)), "the feed repeated an event"
    assert set(feed) == stored, "the feed skipped an event"
    assert inline_copy == async_copy
    assert len(inline_copy) == len(stored)

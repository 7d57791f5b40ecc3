"""Backup and restore into a NEW cluster, and long transactions holding the feed fence.

A new cluster's transaction-id counter starts low, below the feed keys of the
restored events: until eventstore.after_restore() runs, the event store
refuses to append or read (ES006) rather than hide restored events or sort
new ones before them. After it, the feed resumes from a consumer's saved
checkpoint with nothing skipped or repeated, and new events come after the
restored ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import pgcluster
from pg_eventstore.errors import RestoreNotFinishedError
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))

SETUP = """
CREATE TABLE public.async_copy (event_id uuid PRIMARY KEY);
CREATE TABLE public.inline_copy (event_id uuid PRIMARY KEY);
CREATE FUNCTION public.copy_async(p_event eventstore.domain_events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO public.async_copy VALUES (p_event.event_id) $$;
CREATE FUNCTION public.copy_inline(p_event eventstore.domain_events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO public.inline_copy VALUES (p_event.event_id) $$;
SELECT eventstore.register_projection('copy_async', 'public.copy_async(eventstore.domain_events)', NULL, 'async');
SELECT eventstore.register_projection('copy_inline', 'public.copy_inline(eventstore.domain_events)', NULL, 'inline');
CREATE FUNCTION public.count_fold(p_state jsonb, p_event eventstore.domain_events) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_build_object('count', (p_state ->> 'count')::int + 1) $$;
SELECT eventstore.register_aggregate_type('Counter', 'public.count_fold(jsonb, eventstore.domain_events)',
                                          '{"count": 0}', 10);
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "pg-eventstore"), *args], capture_output=True, text=True, check=False
    )


def env_for(dsn: str) -> dict[str, str]:
    params = conninfo_to_dict(dsn)
    return {
        **os.environ,
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGDATABASE": str(params.get("dbname", "postgres")),
    }


def append_some(store: EventStore, count: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        stored = store.append(
            "Counter", uuid.uuid4(), [NewEvent("Tick", {}), NewEvent("Tock", {})], expected_version=NO_STREAM
        )
        ids += [e.event_id for e in stored]
    return ids


def test_restore_into_a_new_cluster_resumes_the_feed_after_after_restore(dsn: str, tmp_path: Path, report: Any) -> None:
    counter_id = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP.encode())
        # Move this cluster's transaction ids (so the events' feed keys) well ahead of a new cluster's.
        for _ in range(3000):
            conn.execute("SELECT pg_current_xact_id()")
        store = EventStore(conn)
        old_ids = append_some(store, 50)
        store.append("Counter", counter_id, [NewEvent("Tick", {}) for _ in range(25)], expected_version=NO_STREAM)
        conn.execute("SELECT eventstore.run_projection('copy_async', 40)")
        # A consumer that has read part of the feed and saved its checkpoint (as text).
        checkpoint = str(store.read_all(None, 60)[-1].feed_position)
        after_checkpoint = [e.event_id for e in store.read_all(checkpoint, 10_000)]
        state_before = conn.execute("SELECT * FROM eventstore.load_aggregate('Counter', %s)", [counter_id]).fetchone()
        snapshots = conn.execute("SELECT count(*) FROM eventstore.aggregate_snapshots").fetchone()
    dump = tmp_path / "events.dump"
    roles = subprocess.run(
        [str(PG_BINDIR / "pg_dumpall"), "--roles-only"], env=env_for(dsn), check=True, capture_output=True, text=True
    ).stdout
    subprocess.run([str(PG_BINDIR / "pg_dump"), "--format=custom", f"--file={dump}"], env=env_for(dsn), check=True)

    with pgcluster.throwaway_cluster() as cluster:
        new_dsn = make_conninfo(cluster.dsn, dbname="restored")
        # Roles first (they are cluster-wide, not in pg_dump's output), then the database.
        subprocess.run(
            [str(PG_BINDIR / "psql"), "-X", "-q", "-d", cluster.dsn],
            input=roles,
            text=True,
            check=True,
            capture_output=True,
        )
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            admin.execute("CREATE DATABASE restored")
        subprocess.run([str(PG_BINDIR / "pg_restore"), "--exit-on-error", f"--dbname={new_dsn}", str(dump)], check=True)
        with psycopg.connect(new_dsn, autocommit=True) as conn:
            store = EventStore(conn)
            with pytest.raises(RestoreNotFinishedError):
                store.read_all(checkpoint)
            with pytest.raises(RestoreNotFinishedError):
                append_some(store, 1)
            lifted = cli("after-restore", "--dsn", new_dsn)
            assert lifted.returncode == 0, lifted.stderr
            assert "feed key offset raised from 0 to" in lifted.stderr
            again = cli("after-restore", "--dsn", new_dsn)  # idempotent
            assert again.returncode == 0, again.stderr
            assert "nothing to do" in again.stderr
            assert again.stdout.split()[-1] == lifted.stdout.split()[-1]

            resumed = [e.event_id for e in store.read_all(checkpoint, 10_000)]
            last = store.read_all(checkpoint, 10_000)[-1].feed_position
            new_ids = append_some(store, 5)
            after_new = [e.event_id for e in store.read_all(last, 10_000)]
            while conn.execute("SELECT eventstore.run_projection('copy_async', 1000)").fetchone() != (0,):
                pass
            async_copy = {r[0] for r in conn.execute("SELECT event_id FROM public.async_copy")}
            inline_copy = {r[0] for r in conn.execute("SELECT event_id FROM public.inline_copy")}
            all_ids = {r[0] for r in conn.execute("SELECT event_id FROM eventstore.domain_events")}
            state_after = conn.execute(
                "SELECT * FROM eventstore.load_aggregate('Counter', %s)", [counter_id]
            ).fetchone()
            used_snapshot = conn.execute(
                "SELECT count(*) FROM eventstore.aggregate_snapshots AS s JOIN eventstore.aggregate_types AS t "
                "USING (aggregate_type) WHERE s.fold_identity = eventstore._fold_identity(t.fold, t.initial_state)"
            ).fetchone()

    report(
        f"restore into a new cluster: {len(old_ids) + 25} events, {snapshots[0] if snapshots else 0} snapshots; "
        f"consumer resumed {len(resumed)} events after its checkpoint, {len(after_new)} new events after them"
    )
    assert resumed == after_checkpoint, "the feed resumed exactly where the consumer stopped"
    assert after_new == new_ids, "new events come after the restored ones"
    assert async_copy == inline_copy == all_ids
    assert state_after == state_before
    assert used_snapshot == snapshots, "restored snapshots stay valid for the same fold"


# How operations.md finds what holds the fence: open transactions registered as appenders.
FENCE_HOLDERS = """
SELECT a.pid, a.backend_xid
FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid)
WHERE l.relation = 'eventstore.domain_events'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted
ORDER BY age(a.backend_xid) DESC
"""


def test_only_an_open_transaction_that_appended_holds_the_fence(dsn: str) -> None:
    with (
        psycopg.connect(dsn) as unrelated,
        psycopg.connect(dsn) as appender,
        psycopg.connect(dsn, autocommit=True) as writer,
        psycopg.connect(dsn, autocommit=True) as reader,
    ):
        unrelated.execute("SELECT pg_current_xact_id()")  # open, with an id, never appends
        store = EventStore(writer)
        before = append_some(store, 5)
        feed = EventStore(reader)
        assert [e.event_id for e in feed.read_all()] == before, "an unrelated transaction does not hold the fence"

        held = append_some(EventStore(appender), 1)  # appended, still open
        after = append_some(store, 5)
        last = feed.read_all()[-1].feed_position
        assert feed.read_all(last) == [], "events above an open appender's key wait"
        holders = reader.execute(FENCE_HOLDERS).fetchall()
        assert [pid for pid, _ in holders] == [appender.info.backend_pid], "the open appender is found"

        appender.commit()
        assert [e.event_id for e in feed.read_all(last)] == held + after, "then nothing is lost"
        unrelated.commit()


def test_a_prepared_transaction_that_appended_holds_the_fence(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as admin,
        psycopg.connect(dsn) as appender,
        psycopg.connect(dsn, autocommit=True) as writer,
        psycopg.connect(dsn, autocommit=True) as reader,
    ):
        # PREPARE TRANSACTION refuses a transaction that sent a NOTIFY: this test's database sends none.
        admin.execute("SELECT eventstore.set_notify_mode('off')")
        appender.tpc_begin(appender.xid(1, str(uuid.uuid4()), "fence"))
        held = append_some(EventStore(appender), 1)
        appender.tpc_prepare()  # its locks now belong to the prepared transaction (pg_locks: no pid)
        after = append_some(EventStore(writer), 3)
        assert EventStore(reader).read_all() == [], "a prepared appender holds the fence"
        appender.tpc_commit()
        assert [e.event_id for e in EventStore(reader).read_all()] == held + after

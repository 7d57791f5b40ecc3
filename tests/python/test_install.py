"""Installing: the CLI (idempotent), CREATE EXTENSION, and migrations that rebuild the same schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pg_eventstore import schema

ROOT = Path(__file__).resolve().parents[2]
PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
MIGRATION_NAME = re.compile(r"^eventstore--\d+\.\d+\.\d+(--\d+\.\d+\.\d+)?\.sql$")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    entry_point = Path(sys.executable).parent / "pg-eventstore"
    return subprocess.run([str(entry_point), *args], capture_output=True, text=True, check=False)


def test_cli_install_is_idempotent(empty_dsn: str) -> None:
    first = cli("install", "--dsn", empty_dsn)
    assert first.returncode == 0, first.stderr
    assert f"installed eventstore {schema.package_version()}" in first.stdout
    with psycopg.connect(empty_dsn) as conn:
        objects_before = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'eventstore'::regnamespace"
        ).fetchone()
        assert schema.installed_version(conn) == schema.package_version()
    second = cli("install", "--dsn", empty_dsn)
    assert second.returncode == 0, second.stderr
    assert "already installed" in second.stdout
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM eventstore.schema_migrations").fetchone() == (1,)
        assert (
            conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'eventstore'::regnamespace").fetchone()
            == objects_before
        )


def test_cli_reports_a_bad_dsn_in_one_line_and_fails() -> None:
    result = cli("install", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect")


def test_create_extension_installs_the_same_version(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION eventstore")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'eventstore'").fetchone() == (
            schema.package_version(),
        )
        assert schema.installed_version(conn) == schema.package_version()
        rows = conn.execute(
            "SELECT event_version FROM eventstore.append_events('Order', gen_random_uuid(), -1,"
            ' \'[{"event_type": "OrderPlaced", "payload": {}}]\')'
        ).fetchall()
        assert rows == [(0,)]


def migration_files() -> list[Path]:
    return sorted((ROOT / "migrations").glob("*.sql"))


def test_migrations_are_named_by_version() -> None:
    names = [path.name for path in migration_files()]
    assert f"eventstore--{schema.package_version()}.sql" in names or any(
        name.endswith(f"--{schema.package_version()}.sql") for name in names
    ), "the current version needs a migration"
    assert all(MIGRATION_NAME.match(name) for name in names), names


def dump_schema(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    env = {
        **os.environ,
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGDATABASE": str(params["dbname"]),
    }
    dump = subprocess.run(
        [str(PG_BINDIR / "pg_dump"), "--schema-only", "--schema=eventstore", "--no-owner"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Comments and pg_dump's per-run \restrict keys differ between any two dumps.
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict")))


def test_schema_from_migrations_equals_schema_from_sql(empty_dsn: str, dsn: str) -> None:
    """dsn was installed from build/eventstore.sql; empty_dsn gets the initial migration and every upgrade."""
    initial, *_ = (path for path in migration_files() if "--" not in path.name[len("eventstore--") :])
    with psycopg.connect(empty_dsn) as conn:
        conn.execute(initial.read_text().encode())
        conn.commit()
        version = schema.installed_version(conn)
        assert version is not None
        available = [path.name for path in migration_files()]
        for name in schema.upgrade_path(version, schema.package_version(), available):
            conn.execute((ROOT / "migrations" / name).read_text().encode())
        conn.commit()
        assert schema.installed_version(conn) == schema.package_version()
    assert dump_schema(empty_dsn) == dump_schema(dsn)


def test_seed_temporal_queries_run_unchanged_for_a_reader(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """DBAs' SQL of the seed's three shapes, with the seed's names, as eventstore_reader."""
    order_id = conn.execute(
        "SELECT aggregate_id FROM eventstore.append_events('Order', gen_random_uuid(), -1, "
        '\'[{"event_type": "OrderPlaced", "payload": {"status": "placed"}},'
        '  {"event_type": "OrderShipped", "payload": {"status": "shipped"}}]\') LIMIT 1'
    ).fetchone()[0]  # type: ignore[index]
    conn.execute("CREATE ROLE dba_reader LOGIN IN ROLE eventstore_reader")
    try:
        with psycopg.connect(dsn, user="dba_reader", autocommit=True) as dba:
            dba.execute("SET search_path = eventstore, public")
            latest = dba.execute(
                "SELECT aggregate_id, event_type, payload->>'status' AS status_after_event, occurred_at "
                "FROM domain_events WHERE aggregate_id = %s AND occurred_at <= %s "
                "ORDER BY event_version DESC LIMIT 1",
                [order_id, "infinity"],
            ).fetchone()
            assert latest is not None and latest[1:3] == ("OrderShipped", "shipped")
            replay = dba.execute(
                "SELECT event_version, event_type, payload, metadata, occurred_at FROM domain_events "
                "WHERE aggregate_id = %s ORDER BY event_version ASC",
                [order_id],
            ).fetchall()
            assert [row[:2] for row in replay] == [(0, "OrderPlaced"), (1, "OrderShipped")]
            counts = dba.execute(
                "SELECT DATE_TRUNC('day', occurred_at) AS day, event_type, COUNT(*) AS count "
                "FROM domain_events WHERE occurred_at > NOW() - INTERVAL '30 days' "
                "GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC"
            ).fetchall()
            assert sorted((row[1], row[2]) for row in counts) == [("OrderPlaced", 1), ("OrderShipped", 1)]
    finally:
        conn.execute(sql.SQL("DROP OWNED BY dba_reader"))
        conn.execute("DROP ROLE dba_reader")


# A counting read model for the upgrade test: per event type, how many events.
COUNTER_SQL = """
CREATE SCHEMA counter;
CREATE TABLE counter.counts (projection text, event_type text, events integer NOT NULL,
                             PRIMARY KEY (projection, event_type));
CREATE FUNCTION counter.count_inline(p_event eventstore.domain_events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counter.counts VALUES ('inline', p_event.event_type, 1)
    ON CONFLICT (projection, event_type) DO UPDATE SET events = counter.counts.events + 1;
$$;
CREATE FUNCTION counter.count_async(p_event eventstore.domain_events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counter.counts VALUES ('async', p_event.event_type, 1)
    ON CONFLICT (projection, event_type) DO UPDATE SET events = counter.counts.events + 1;
$$;
CREATE FUNCTION counter.reset_inline() RETURNS void LANGUAGE sql AS $$
    DELETE FROM counter.counts WHERE projection = 'inline';
$$;
SELECT eventstore.register_projection('inline counter', 'counter.count_inline(eventstore.domain_events)',
                                      NULL, 'inline', 'counter.reset_inline()');
SELECT eventstore.register_projection('async counter', 'counter.count_async(eventstore.domain_events)',
                                      ARRAY['Counted'], 'async');
"""


def append_counted(conn: psycopg.Connection[Any], count: int) -> None:
    for _ in range(count):
        conn.execute(
            "SELECT FROM eventstore.append_events('Counter', gen_random_uuid(), -1,"
            ' \'[{"event_type": "Counted", "payload": {}}, {"event_type": "Other", "payload": {}}]\')'
        )


def counts(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], int]:
    rows = conn.execute("SELECT projection, event_type, events FROM counter.counts").fetchall()
    return {(projection, event_type): events for projection, event_type, events in rows}


@pytest.mark.parametrize("how", ["upgrade script", "ALTER EXTENSION UPDATE"])
def test_upgrade_keeps_projections_registered_under_the_first_version_working(empty_dsn: str, how: str) -> None:
    """Projections registered under 0.1.0 (one-event handler wrappers) run after the upgrade, inline and async."""
    initial, *_ = (path for path in migration_files() if "--" not in path.name[len("eventstore--") :])
    first_version = initial.name.removeprefix("eventstore--").removesuffix(".sql")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        if how == "upgrade script":
            conn.execute(initial.read_text().encode())
        else:
            conn.execute(sql.SQL("CREATE EXTENSION eventstore VERSION {}").format(sql.Literal(first_version)))
        conn.execute(COUNTER_SQL.encode())
        append_counted(conn, 3)
        assert counts(conn) == {("inline", "Counted"): 3, ("inline", "Other"): 3}

        if how == "upgrade script":
            result = cli("upgrade", "--dsn", empty_dsn)
            assert result.returncode == 0, result.stderr
        else:
            conn.execute("ALTER EXTENSION eventstore UPDATE")
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'eventstore'").fetchone() == (
                schema.package_version(),
            )
            members = conn.execute(
                "SELECT count(*) FROM pg_depend AS d JOIN pg_proc AS p ON d.objid = p.oid"
                " WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'"
                " AND p.proname ~ '^(projection_handler_|projection_reset_|apply_inline_projections$)'"
            ).fetchone()
            assert members == (0,), "generated functions must not become members of the extension"
        assert schema.installed_version(conn) == schema.package_version()
        one_event_wrappers = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'eventstore'::regnamespace"
            " AND proname LIKE 'projection_handler_%'"
            " AND proargtypes = ARRAY['eventstore.domain_events'::regtype]::oidvector"
        ).fetchone()
        assert one_event_wrappers == (0,)

        append_counted(conn, 2)
        assert conn.execute("SELECT eventstore.run_projection('async counter')").fetchone() == (5,)
        assert conn.execute("SELECT eventstore.rebuild_projection('inline counter')").fetchone() == (10,)
        assert counts(conn) == {("inline", "Counted"): 5, ("inline", "Other"): 5, ("async", "Counted"): 5}

        conn.execute("SELECT eventstore.unregister_projection('inline counter')")
        conn.execute("SELECT eventstore.unregister_projection('async counter')")
        append_counted(conn, 1)
        assert counts(conn)[("inline", "Counted")] == 5, "an unregistered inline projection runs no more"


def test_upgrade_refuses_a_schema_installed_as_an_extension(empty_dsn: str) -> None:
    """Its scripts would run, but pg_extension would keep the old version: ALTER EXTENSION UPDATE is the way."""
    initial, *_ = (path for path in migration_files() if "--" not in path.name[len("eventstore--") :])
    first_version = initial.name.removeprefix("eventstore--").removesuffix(".sql")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE EXTENSION eventstore VERSION {}").format(sql.Literal(first_version)))
    result = cli("upgrade", "--dsn", empty_dsn)
    assert result.returncode == 1
    assert "ALTER EXTENSION eventstore UPDATE" in result.stderr
    with psycopg.connect(empty_dsn) as conn:
        assert schema.installed_version(conn) == first_version

"""Installing: the CLI (idempotent), CREATE EXTENSION, and migrations that rebuild the same schema."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pg_eventstore import schema

ROOT = Path(__file__).resolve().parents[2]
PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
MIGRATION_NAME = re.compile(r"^eventstore--\d+\.\d+\.\d+(--\d+\.\d+\.\d+)?\.sql$")
# The hand-written part of the upgrade to this version: migrations/<from>--<to>/pre.sql and post.sql.
DELTA_NAME = re.compile(r"^(?P<source>\d+\.\d+\.\d+)--(?P<target>\d+\.\d+\.\d+)$")
# What the package ships (make sql copies it): the install script and every upgrade script.
PACKAGE_SQL = Path(str(files("pg_eventstore") / "sql"))


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
    """The first version's install script and every upgrade script, as the package ships them."""
    return sorted(path for path in PACKAGE_SQL.glob("eventstore--*.sql"))


def test_migrations_are_named_by_version() -> None:
    names = [path.name for path in migration_files()]
    assert any(name.endswith(f"--{schema.package_version()}.sql") for name in names), (
        "the current version needs an upgrade script"
    )
    assert all(MIGRATION_NAME.match(name) for name in names), names


def test_migrations_hold_frozen_scripts_and_one_delta_to_this_version() -> None:
    """migrations/: released scripts, their checksums, the README, and the delta folder of this version's upgrade."""
    deltas = [path for path in (ROOT / "migrations").iterdir() if path.is_dir()]
    assert [DELTA_NAME.match(path.name)["target"] for path in deltas] == [schema.package_version()]  # type: ignore[index]
    assert sorted(path.name for path in deltas[0].iterdir()) == ["post.sql", "pre.sql"]
    others = {path.name for path in (ROOT / "migrations").iterdir() if path.is_file()} - {"SHA256SUMS", "README.md"}
    assert all(MIGRATION_NAME.match(name) for name in others), others


def test_released_scripts_are_never_edited() -> None:
    """Every script in migrations/ is released: its sha256 is recorded in migrations/SHA256SUMS and must not change."""
    lines = (ROOT / "migrations" / "SHA256SUMS").read_text().splitlines()
    recorded = {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}
    frozen = sorted(path.name for path in (ROOT / "migrations").glob("eventstore--*.sql"))
    assert sorted(recorded) == frozen
    for name, digest in recorded.items():
        assert hashlib.sha256((ROOT / "migrations" / name).read_bytes()).hexdigest() == digest, f"{name} was edited"


def test_the_hand_written_part_of_the_upgrade_is_small() -> None:
    """The upgrade script is pre.sql + sql/code/ + post.sql: only the deltas are written by hand."""
    (delta,) = (path for path in (ROOT / "migrations").iterdir() if path.is_dir())
    lines = sum(len((delta / part).read_text().splitlines()) for part in ("pre.sql", "post.sql"))
    assert lines < 200


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


def dump_extension(dsn: str) -> str:
    """pg_dump leaves an extension's members out, unless in binary-upgrade mode: its dump without oids and xids."""
    params = conninfo_to_dict(dsn)
    env = {**os.environ, "PGHOST": str(params["host"]), "PGPORT": str(params["port"]), "PGUSER": str(params["user"])}
    dump = subprocess.run(
        [str(PG_BINDIR / "pg_dump"), "--binary-upgrade", "--schema-only", "--no-owner", str(params["dbname"])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # binary_upgrade_set_missing_value() also goes: a column added with a default by an upgrade keeps
    # that default as its "missing value" for old rows, a storage detail a fresh install lacks.
    volatile = (
        "--",
        "\\restrict",
        "\\unrestrict",
        "SET relfrozenxid",
        "WHERE oid = ",
        "SELECT pg_catalog.binary_upgrade_set",
    )
    kept = "\n".join(
        re.sub(r"\d+", "N", line) if "binary_upgrade_create_empty_extension" in line else line
        for line in dump.splitlines()
        if not line.startswith(volatile)
    )
    return re.sub(r"\n{3,}", "\n\n", kept)  # the lines left out leave runs of blank lines behind


@pytest.fixture
def second_empty_dsn(server_dsn: str) -> Iterator[str]:
    """Another database without the schema, for a fresh install to compare with."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def install_first_version(conn: psycopg.Connection[Any], how: str) -> None:
    initial, *_ = (path for path in migration_files() if "--" not in path.name[len("eventstore--") :])
    if how == "upgrade script":
        conn.execute(initial.read_text().encode())
    else:
        first_version = initial.name.removeprefix("eventstore--").removesuffix(".sql")
        conn.execute(sql.SQL("CREATE EXTENSION eventstore VERSION {}").format(sql.Literal(first_version)))


def upgrade_to_this_version(conn: psycopg.Connection[Any], how: str) -> None:
    if how == "upgrade script":
        version = schema.installed_version(conn)
        assert version is not None
        available = [path.name for path in migration_files()]
        for name in schema.upgrade_path(version, schema.package_version(), available):
            conn.execute((PACKAGE_SQL / name).read_text().encode())
    else:
        conn.execute("ALTER EXTENSION eventstore UPDATE")
    assert schema.installed_version(conn) == schema.package_version()


@pytest.mark.parametrize("how", ["upgrade script", "ALTER EXTENSION UPDATE"])
def test_schema_from_migrations_equals_schema_from_sql(empty_dsn: str, second_empty_dsn: str, how: str) -> None:
    """The first version plus every upgrade == a fresh install, with inline and async projections registered
    before the upgrade (their generated functions and trigger are regenerated by it)."""
    with psycopg.connect(second_empty_dsn, autocommit=True) as conn:
        if how == "upgrade script":
            conn.execute(schema.install_script().encode())
        else:
            conn.execute("CREATE EXTENSION eventstore")
        conn.execute(COUNTER_SQL.encode())
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        install_first_version(conn, how)
        conn.execute(COUNTER_SQL.encode())
        upgrade_to_this_version(conn, how)
    if how == "upgrade script":
        assert dump_schema(empty_dsn) == dump_schema(second_empty_dsn)
    else:
        assert dump_extension(empty_dsn) == dump_extension(second_empty_dsn)


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
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        install_first_version(conn, how)
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

"""Installing and upgrading the eventstore schema from the scripts shipped in the package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg

from pg_eventstore import queries
from pg_eventstore.errors import EventStoreError
from pg_eventstore.store import EventStore

_SQL = files("pg_eventstore") / "sql"
_UPGRADE = re.compile(r"^eventstore--(?P<source>[\d.]+)--(?P<target>[\d.]+)\.sql$")
# Held while installing or upgrading, so two installers do not race.
_INSTALL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('pg_eventstore schema change'))"


def package_version() -> str:
    """The schema version this package installs."""
    return (_SQL / "VERSION").read_text().strip()


def install_script() -> str:
    return (_SQL / "eventstore.sql").read_text()


def installed_version(conn: psycopg.Connection[Any]) -> str | None:
    """The schema version installed in the connected database, None when there is none."""
    return EventStore(conn).installed_version()


@dataclass(frozen=True)
class SchemaChange:
    before: str | None
    after: str
    applied: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def install(conn: psycopg.Connection[Any]) -> SchemaChange:
    """Install the schema unless some version is installed already (then nothing changes)."""
    with conn.transaction():
        conn.execute(_INSTALL_LOCK)
        before = installed_version(conn)
        if before is not None:
            return SchemaChange(before, before, [])
        conn.execute(install_script().encode())
    return SchemaChange(None, package_version(), ["eventstore.sql"])


def upgrade_path(source: str, target: str, available: list[str]) -> list[str]:
    """The upgrade scripts leading from source to target, in order."""
    steps = {m["source"]: (m["target"], name) for name in available if (m := _UPGRADE.match(name))}
    path: list[str] = []
    version = source
    while version != target:
        if version not in steps:
            raise EventStoreError(f"no upgrade script from version {version} towards {target}")
        version, name = steps[version]
        path.append(name)
    return path


def upgrade(conn: psycopg.Connection[Any]) -> SchemaChange:
    """Apply the upgrade scripts from the installed version to this package's version, in one transaction."""
    target = package_version()
    with conn.transaction():
        conn.execute(_INSTALL_LOCK)
        before = installed_version(conn)
        if before is None:
            raise EventStoreError("the eventstore schema is not installed; run install first")
        if conn.execute(queries.INSTALLED_AS_EXTENSION).fetchone() == (True,):
            # Its scripts would run, but the extension would keep recording the old version.
            raise EventStoreError(
                "the eventstore schema was installed with CREATE EXTENSION; upgrade it with"
                " ALTER EXTENSION eventstore UPDATE (after make install of the new version)"
            )
        names = upgrade_path(before, target, [p.name for p in _SQL.iterdir()])
        for name in names:
            conn.execute((_SQL / name).read_text().encode())
    return SchemaChange(before, target, names)

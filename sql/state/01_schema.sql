-- pg_eventstore: the schema and the roles every later file refers to.
-- Roles are cluster-wide, so they are created only when missing: a second
-- database in the same cluster reuses them.

CREATE SCHEMA eventstore;

COMMENT ON SCHEMA eventstore IS
'pg_eventstore: an append-only event log with optimistic concurrency, a gap-free global feed, aggregates, snapshots and projections.';

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_reader') THEN
        CREATE ROLE eventstore_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_writer') THEN
        CREATE ROLE eventstore_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_admin') THEN
        CREATE ROLE eventstore_admin NOLOGIN;
    END IF;
END
$roles$;

-- Each role includes the one below it: admin > writer > reader.
GRANT eventstore_reader TO eventstore_writer;
GRANT eventstore_writer TO eventstore_admin;

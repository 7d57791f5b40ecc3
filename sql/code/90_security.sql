-- Privileges. Nobody but the owner writes to the tables; the roles reach the
-- data through SECURITY DEFINER functions, and readers may SELECT the tables
-- so DBAs can run their own temporal SQL.

REVOKE ALL ON ALL TABLES IN SCHEMA eventstore FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA eventstore FROM PUBLIC;

GRANT USAGE ON SCHEMA eventstore TO eventstore_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA eventstore TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.load_events(uuid, integer) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.read_all(text, integer, text[], text[]) TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.load_aggregate(text, uuid) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_state_at(text, uuid, timestamptz) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_state_at_version(text, uuid, integer) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_history(uuid) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.event_counts(timestamptz, timestamptz, text) TO eventstore_reader;

-- The view projection_status calls these, and a view's functions are checked
-- against the role that queries the view, not against the view's owner.
GRANT EXECUTE ON FUNCTION eventstore.rebuild_progress() TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.feed_fence() TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.projection_lag(eventstore.projections) TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) TO eventstore_writer;
-- Projection workers run as writers: they apply batches and move checkpoints.
GRANT EXECUTE ON FUNCTION eventstore.run_projection(text, integer) TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.lock_projection(text) TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)
TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.fail_projection(text, eventstore.feed_position, text) TO eventstore_writer;

GRANT EXECUTE ON FUNCTION eventstore.after_restore() TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.set_notify_mode(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_aggregate_type(text, regprocedure, jsonb, integer) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.take_snapshot(text, uuid) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.prune_snapshots(text, integer) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_projection(text, regprocedure, text[], text, regprocedure)
TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_external_projection(text, text[]) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.unregister_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.pause_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.resume_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.retry_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.skip_projection_event(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.rebuild_projection(text) TO eventstore_admin;

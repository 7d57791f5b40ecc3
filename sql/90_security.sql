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

GRANT EXECUTE ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) TO eventstore_writer;

GRANT EXECUTE ON FUNCTION eventstore.after_restore() TO eventstore_admin;

-- Events are immutable: UPDATE, DELETE and TRUNCATE on the log are refused
-- for everyone, the owner and superusers included.

-- Raises ES004 for whatever statement fired it.
CREATE OR REPLACE FUNCTION eventstore._refuse_event_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on %.% is not allowed', tg_op, tg_table_schema, tg_table_name
        USING ERRCODE = 'ES004',
              HINT = 'Record a correcting event with eventstore.append_events() instead.';
END;
$$;

COMMENT ON FUNCTION eventstore._refuse_event_change() IS
'Internal: trigger function that refuses UPDATE, DELETE and TRUNCATE on eventstore.domain_events with ES004.';

CREATE OR REPLACE TRIGGER domain_events_refuse_update_delete
BEFORE UPDATE OR DELETE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._refuse_event_change();

CREATE OR REPLACE TRIGGER domain_events_refuse_truncate
BEFORE TRUNCATE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._refuse_event_change();

-- ALWAYS: the triggers fire under session_replication_role = replica too,
-- which would otherwise let a superuser slip past them.
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_update_delete;
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_truncate;

-- Projections (read models), the registry: registering and unregistering,
-- the registry row and its guards, and the generated handler wrappers.

-- The registry row of a projection; ES003 when it is not registered.
CREATE OR REPLACE FUNCTION eventstore._registered_projection(p_name text)
RETURNS eventstore.projections
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections;
BEGIN
    PERFORM eventstore._check_not_empty(p_name, 'p_name');
    SELECT p.* INTO v_projection FROM eventstore.projections AS p WHERE p.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is not registered', p_name
            USING ERRCODE = 'ES003',
                  HINT = 'See eventstore.projection_status for the registered projections.';
    END IF;
    RETURN v_projection;
END;
$$;

COMMENT ON FUNCTION eventstore._registered_projection(text) IS
'Internal: the registry row of a projection; ES003 when it is not registered.';

-- The registry row of a projection, locked for this transaction; a row of
-- NULLs when another transaction holds it (SKIP LOCKED: runners and clients
-- never wait for each other). One runner per projection rests on this.
CREATE OR REPLACE FUNCTION eventstore._try_lock_projection(p_name text)
RETURNS eventstore.projections
LANGUAGE plpgsql
AS $$
DECLARE
    v_projection eventstore.projections;
BEGIN
    SELECT p.* INTO v_projection
    FROM eventstore.projections AS p
    WHERE p.name = p_name
    FOR UPDATE SKIP LOCKED;
    RETURN v_projection;
END;
$$;

COMMENT ON FUNCTION eventstore._try_lock_projection(text) IS
'Internal: locks a projection''s registry row and returns it; NULLs when another transaction holds it.';

-- ES002 unless a projection runs in the mode a function is for.
CREATE OR REPLACE FUNCTION eventstore._check_projection_mode(p_projection eventstore.projections, p_mode text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_projection.mode <> p_mode THEN
        RAISE EXCEPTION 'projection % is %, not %', p_projection.name, p_projection.mode, p_mode
            USING ERRCODE = 'ES002',
                  HINT = 'Inline projections run with every append, async ones through run_projection(), external ones in their client.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_projection_mode(eventstore.projections, text) IS
'Internal: ES002 unless the projection is of the given mode (inline, async, external).';

-- The name (in schema eventstore) of the generated wrapper through which a projection's handler (p_kind
-- 'handler') or reset function (p_kind 'reset') is called; see
-- _hand_to_owner_of() for why user code is never called directly.
CREATE OR REPLACE FUNCTION eventstore._projection_wrapper(p_name text, p_kind text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'projection_' || p_kind || '_' || md5(p_name);
$$;

COMMENT ON FUNCTION eventstore._projection_wrapper(text, text) IS
'Internal: the name of the generated wrapper calling a projection''s handler or reset function.';

-- The signature of that wrapper, for regprocedure: the handler wrapper takes
-- a batch of events, the reset wrapper nothing.
CREATE OR REPLACE FUNCTION eventstore._projection_wrapper_signature(p_name text, p_kind text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'eventstore.%I(%s)',
        eventstore._projection_wrapper(p_name, p_kind),
        CASE p_kind WHEN 'handler' THEN 'eventstore.domain_events[]' ELSE '' END
    );
$$;

COMMENT ON FUNCTION eventstore._projection_wrapper_signature(text, text) IS
'Internal: the signature of the generated handler or reset wrapper of a projection.';

-- Drops a projection's generated handler or reset wrapper when there is one
-- (external projections have none; others may lack a reset wrapper).
CREATE OR REPLACE FUNCTION eventstore._drop_projection_wrapper(p_name text, p_kind text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_wrapper regprocedure := to_regprocedure(eventstore._projection_wrapper_signature(p_name, p_kind));
BEGIN
    IF v_wrapper IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION %s', v_wrapper);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._drop_projection_wrapper(text, text) IS
'Internal: drops the generated handler or reset wrapper of a projection, if it exists.';

-- (Re)creates the generated wrappers of a projection: the handler wrapper,
-- which takes a batch of events, and the reset wrapper (dropped when there is
-- no reset function). See _hand_to_owner_of() for why user code is never
-- called directly. Also used by the upgrade from 0.1.0, whose handler
-- wrappers took one event.
CREATE OR REPLACE FUNCTION eventstore._create_projection_wrappers(
    p_name text,
    p_handler regprocedure,
    p_reset regprocedure
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One call per batch of events, not per event: the switch to the
    -- owner's rights and search_path is paid once for the whole batch.
    -- unnest returns the events in array order, which is feed order.
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION eventstore.%I(p_events eventstore.domain_events[]) RETURNS void LANGUAGE plpgsql
         SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
        eventstore._projection_wrapper(p_name, 'handler'),
        format(
            E'BEGIN%s\n    PERFORM %s(e) FROM pg_catalog.unnest(p_events) AS e;\nEND;',
            eventstore._owner_guard(p_handler), eventstore._qualified_name(p_handler)
        )
    );
    PERFORM eventstore._hand_to_owner_of(
        eventstore._projection_wrapper_signature(p_name, 'handler')::regprocedure,
        p_handler,
        format('Generated by register_projection(): calls the handler of projection %s for each event of a batch.', p_name)
    );
    PERFORM eventstore._drop_projection_wrapper(p_name, 'reset');
    IF p_reset IS NOT NULL THEN
        EXECUTE format(
            'CREATE FUNCTION eventstore.%I() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
             SET search_path = pg_catalog, pg_temp AS %L',
            eventstore._projection_wrapper(p_name, 'reset'),
            format(E'BEGIN%s\n    PERFORM %s();\nEND;', eventstore._owner_guard(p_reset), eventstore._qualified_name(p_reset))
        );
        PERFORM eventstore._hand_to_owner_of(
            eventstore._projection_wrapper_signature(p_name, 'reset')::regprocedure,
            p_reset,
            format('Generated by register_projection(): calls the reset function of projection %s.', p_name)
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._create_projection_wrappers(text, regprocedure, regprocedure) IS
'Internal: (re)creates the generated handler (batch) and reset wrappers of a projection.';

-- Raises ES002 unless p_event_types is NULL or a non-empty list of non-empty names.
CREATE OR REPLACE FUNCTION eventstore._check_event_types(p_event_types text[])
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_event_types IS NOT NULL AND (
        cardinality(p_event_types) = 0
        OR EXISTS (SELECT FROM unnest(p_event_types) AS t (name) WHERE t.name IS NULL OR btrim(t.name) = '')
    ) THEN
        RAISE EXCEPTION 'p_event_types must be NULL (all events) or a non-empty list of event type names'
            USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_event_types(text[]) IS
'Internal: ES002 unless the list of event types is NULL or non-empty without NULL or empty names.';

-- Purpose: register or replace a projection. The handler is
-- (event eventstore.domain_events) RETURNS void; the optional reset function
-- () RETURNS void empties the read model for rebuild_projection().
-- Re-registering (same mode) keeps the checkpoint and state.
CREATE OR REPLACE FUNCTION eventstore.register_projection(
    p_name text,
    p_handler regprocedure,
    p_event_types text[] DEFAULT NULL,
    p_mode text DEFAULT 'inline',
    p_reset regprocedure DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._check_name(p_name, 'p_name');
    IF p_mode IS NULL OR p_mode NOT IN ('inline', 'async') THEN
        RAISE EXCEPTION 'p_mode must be ''inline'' or ''async''; got %', coalesce(p_mode, 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = 'Client-side handlers register with eventstore.register_external_projection().';
    END IF;
    PERFORM eventstore._check_event_types(p_event_types);
    IF NOT eventstore._has_signature(p_handler, 'void', ARRAY['eventstore.domain_events']::regtype[]) THEN
        RAISE EXCEPTION 'handler % does not have the signature (event eventstore.domain_events) RETURNS void',
                        coalesce(p_handler::text, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
    IF p_reset IS NOT NULL AND NOT eventstore._has_signature(p_reset, 'void', '{}') THEN
        RAISE EXCEPTION 'reset function % does not have the signature () RETURNS void', p_reset
            USING ERRCODE = 'ES002';
    END IF;
    PERFORM eventstore._check_may_register(p_handler, 'handler');
    IF p_reset IS NOT NULL THEN
        PERFORM eventstore._check_may_register(p_reset, 'reset function');
    END IF;

    PERFORM eventstore._create_projection_wrappers(p_name, p_handler, p_reset);

    INSERT INTO eventstore.projections AS p (name, handler, event_types, mode, reset)
    VALUES (p_name, p_handler, p_event_types, p_mode, p_reset)
    ON CONFLICT (name) DO UPDATE
    SET handler = excluded.handler,
        event_types = excluded.event_types,
        reset = excluded.reset,
        updated_at = pg_catalog.now()
    WHERE p.mode = excluded.mode;
    -- A new mode would need a new checkpoint (inline to async replays
    -- everything, async to inline skips what it had not applied): refused.
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is registered as %; its mode cannot change to %',
                        p_name, (SELECT p.mode FROM eventstore.projections AS p WHERE p.name = p_name), p_mode
            USING ERRCODE = 'ES002',
                  HINT = 'Unregister it and register it again; then rebuild it (or let an async one replay the log).';
    END IF;
    PERFORM eventstore._refresh_inline_projections();
END;
$$;

COMMENT ON FUNCTION eventstore.register_projection(text, regprocedure, text[], text, regprocedure) IS
'Registers or replaces a projection: handler(event eventstore.domain_events) RETURNS void, applied to p_event_types (NULL: all).
p_mode ''inline'' runs it in the appending transaction; ''async'' runs it through run_projection(). p_reset() empties the read model for rebuild_projection().
Errors: ES002.';

-- Register a projection whose handler runs in a client (e.g. Python): the
-- database keeps its checkpoint and failures; lock_projection(),
-- save_projection_checkpoint() and fail_projection() drive it.
CREATE OR REPLACE FUNCTION eventstore.register_external_projection(p_name text, p_event_types text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._check_name(p_name, 'p_name');
    PERFORM eventstore._check_event_types(p_event_types);
    INSERT INTO eventstore.projections AS p (name, event_types, mode)
    VALUES (p_name, p_event_types, 'external')
    ON CONFLICT (name) DO UPDATE
    SET event_types = excluded.event_types, updated_at = pg_catalog.now()
    WHERE p.mode = 'external';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is registered with a database handler', p_name
            USING ERRCODE = 'ES002', HINT = 'Unregister it first, or pick another name.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.register_external_projection(text, text[]) IS
'Registers a projection whose handler runs in a client; the database keeps its checkpoint. Errors: ES002.';

-- Remove a projection (its read model is left as it is).
CREATE OR REPLACE FUNCTION eventstore.unregister_projection(p_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._registered_projection(p_name);
    DELETE FROM eventstore.projections AS p WHERE p.name = p_name;
    PERFORM eventstore._refresh_inline_projections();
    PERFORM eventstore._drop_projection_wrapper(p_name, 'handler');
    PERFORM eventstore._drop_projection_wrapper(p_name, 'reset');
END;
$$;

COMMENT ON FUNCTION eventstore.unregister_projection(text) IS
'Removes a projection and, for inline ones, its call from the trigger; the read model is left as it is. Errors: ES002, ES003.';

-- User code (folds, projection handlers and reset functions) is called through
-- generated wrappers that run with the rights of the code's owner, never with
-- the event store owner's: the machinery that generates and guards them.

-- A function's schema-qualified, quoted name, for generated and dynamic SQL.
CREATE OR REPLACE FUNCTION eventstore._qualified_name(p_function regprocedure)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, p.proname)
    FROM pg_catalog.pg_proc AS p
    INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
    WHERE p.oid = p_function;
$$;

COMMENT ON FUNCTION eventstore._qualified_name(regprocedure) IS
'Internal: the quoted, schema-qualified name of a function, for generated SQL.';

-- Generated functions that call a user's function (a fold, a projection
-- handler or reset) are SECURITY DEFINER and handed to the owner of that
-- function: the user's code then runs with its owner's rights, never with the
-- event store owner's, even though the event store's own SECURITY DEFINER
-- functions call it. Only the event store's functions may execute them.
CREATE OR REPLACE FUNCTION eventstore._hand_to_owner_of(p_generated regprocedure, p_target regprocedure, p_comment text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner regrole := (SELECT p.proowner::regrole FROM pg_catalog.pg_proc AS p WHERE p.oid = p_target);
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', p_generated);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', p_generated, p_comment);
    IF v_owner <> current_user::regrole THEN
        EXECUTE format('ALTER FUNCTION %s OWNER TO %s', p_generated, v_owner);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', p_generated, current_user);
    END IF;
    PERFORM eventstore._release_from_extension(p_generated);
END;
$$;

COMMENT ON FUNCTION eventstore._hand_to_owner_of(regprocedure, regprocedure, text) IS
'Internal: makes a generated wrapper run with the rights of the owner of the user function it calls.';

-- The first statement of every generated wrapper. Its owner may ALTER it (to
-- SECURITY INVOKER, say, so that it would run with the rights of its caller,
-- the event store owner) but cannot replace its body, which needs CREATE on
-- schema eventstore: so the body refuses to run as anyone but that owner.
-- Fully qualified, types and operators included: the owner may also change
-- the wrapper's search_path.
CREATE OR REPLACE FUNCTION eventstore._owner_guard(p_target regprocedure)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        $guard$
    IF CURRENT_USER OPERATOR(pg_catalog.<>) %1$L::pg_catalog.name THEN
        RAISE EXCEPTION 'the generated function calling %% must run as %%, not as %%', %2$L, %1$L, CURRENT_USER
            USING ERRCODE = '42501', HINT = 'It was altered after registration; register it again.';
    END IF;$guard$,
        pg_catalog.pg_get_userbyid(p.proowner), p.oid::regprocedure::text
    )
    FROM pg_catalog.pg_proc AS p
    WHERE p.oid = p_target;
$$;

COMMENT ON FUNCTION eventstore._owner_guard(regprocedure) IS
'Internal: PL/pgSQL that refuses to run unless the current user is the owner of p_target, for generated wrappers.';

-- Whether a function to register has the signature its role needs: a plain
-- function (not a procedure, aggregate or set-returning one) returning
-- p_result from exactly the arguments p_arguments. False for NULL.
CREATE OR REPLACE FUNCTION eventstore._has_signature(p_function regprocedure, p_result regtype, p_arguments regtype[])
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM pg_catalog.pg_proc AS p
        WHERE p.oid = p_function
          AND p.prokind = 'f'
          AND NOT p.proretset
          AND p.prorettype = p_result
          -- proargtypes counts from 0: compared as an array counting from 1.
          AND ARRAY(SELECT unnest(p.proargtypes)) = p_arguments::oid[]
    );
$$;

COMMENT ON FUNCTION eventstore._has_signature(regprocedure, regtype, regtype[]) IS
'Internal: whether a function to register is a plain function with the given result and argument types.';

-- Registering user code hands it to the event store, which runs it with its
-- owner's rights: so only a session that holds those rights may register it.
-- session_user, not current_user (the event store owner inside SECURITY
-- DEFINER functions): a session can never act with more than its login role's
-- rights, whatever role it SET ROLE to.
CREATE OR REPLACE FUNCTION eventstore._check_may_register(p_function regprocedure, p_what text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner oid := (SELECT p.proowner FROM pg_catalog.pg_proc AS p WHERE p.oid = p_function);
BEGIN
    IF NOT pg_catalog.pg_has_role(session_user, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to register % %: it belongs to %, and % does not hold that role''s rights',
                        p_what, p_function, v_owner::regrole, session_user
            USING ERRCODE = '42501',
                  HINT = 'Register functions owned by your own role (the event store runs them with their owner''s rights).';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_may_register(regprocedure, text) IS
'Internal: 42501 unless the session''s login role holds the rights of the owner of a function to be registered.';

-- Generated functions belong to their registration, never to the extension:
-- unregistering drops them, which a member of the extension refuses. Created
-- by an extension script (an upgrade regenerating them), a function becomes a
-- member all the same: this releases it.
CREATE OR REPLACE FUNCTION eventstore._release_from_extension(p_generated regprocedure)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_depend AS d
        WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p_generated AND d.deptype = 'e'
    ) THEN
        EXECUTE format('ALTER EXTENSION eventstore DROP FUNCTION %s', p_generated);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._release_from_extension(regprocedure) IS
'Internal: releases a generated function from the extension when an extension script created it.';

-- Guards shared by the public functions: each raises ES002 naming the
-- argument (p_argument) that is wrong, and returns nothing when it is right.
-- Internal; no SET search_path: every caller pins it (see the
-- note on internal helpers in 02_feed_keys.sql for why that matters).
-- Each guard is a condition and a message for _raise_invalid(), the one place
-- that raises: a SQL function without SET, which the planner inlines into its
-- caller's statement, so a guard that passes costs no function call, and its
-- message is formatted only when it fails.

-- ES002 with a message and, when there is one, a hint (RAISE refuses a NULL
-- hint). STABLE, not IMMUTABLE: the planner never runs a STABLE function
-- while folding constants, so a guard inlined into a branch that is not taken
-- cannot raise, whatever its arguments.
CREATE OR REPLACE FUNCTION eventstore._raise_invalid(p_message text, p_hint text)
RETURNS void
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'ES002', MESSAGE = p_message;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'ES002', MESSAGE = p_message, HINT = p_hint;
END;
$$;

COMMENT ON FUNCTION eventstore._raise_invalid(text, text) IS
'Internal: raises ES002 with the message and the optional hint.';

-- A name or type: a non-empty string.
CREATE OR REPLACE FUNCTION eventstore._check_not_empty(p_value text, p_argument text)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN p_value IS NULL OR btrim(p_value) = '' THEN
        eventstore._raise_invalid(format('%s must be a non-empty string', p_argument), NULL)
    END;
$$;

COMMENT ON FUNCTION eventstore._check_not_empty(text, text) IS
'Internal: ES002 unless the argument is a non-empty string.';

-- A name to register: non-empty and at most 255 characters, as the registry tables allow.
CREATE OR REPLACE FUNCTION eventstore._check_name(p_value text, p_argument text)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN p_value IS NULL OR btrim(p_value) = '' OR length(p_value) > 255 THEN
        eventstore._raise_invalid(format('%s must be a non-empty string of at most 255 characters', p_argument), NULL)
    END;
$$;

COMMENT ON FUNCTION eventstore._check_name(text, text) IS
'Internal: ES002 unless the argument is a non-empty string of at most 255 characters.';

-- Any argument that has no meaning as NULL (no STRICT functions: they would
-- silently return nothing).
CREATE OR REPLACE FUNCTION eventstore._check_not_null(p_value anyelement, p_argument text, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN p_value IS NULL THEN
        eventstore._raise_invalid(format('%s must not be NULL', p_argument), p_hint)
    END;
$$;

COMMENT ON FUNCTION eventstore._check_not_null(anyelement, text, text) IS
'Internal: ES002 when the argument is NULL.';

-- A count that must be at least 1 (page and batch sizes).
CREATE OR REPLACE FUNCTION eventstore._check_positive(p_value integer, p_argument text)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN p_value IS NULL OR p_value < 1 THEN
        eventstore._raise_invalid(
            format('%s must be a positive integer; got %s', p_argument, coalesce(p_value::text, 'NULL')), NULL
        )
    END;
$$;

COMMENT ON FUNCTION eventstore._check_positive(integer, text) IS
'Internal: ES002 unless the argument is an integer >= 1.';

-- A version or a count that may be 0.
CREATE OR REPLACE FUNCTION eventstore._check_not_negative(p_value integer, p_argument text, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN p_value IS NULL OR p_value < 0 THEN
        eventstore._raise_invalid(format('%s must be >= 0; got %s', p_argument, coalesce(p_value::text, 'NULL')), p_hint)
    END;
$$;

COMMENT ON FUNCTION eventstore._check_not_negative(integer, text, text) IS
'Internal: ES002 unless the argument is an integer >= 0.';

-- A feed position with both fields. Not "p_position IS NULL": a row is NULL
-- only when every field is, so a half-NULL position would slip through.
CREATE OR REPLACE FUNCTION eventstore._check_feed_position(p_position eventstore.feed_position, p_argument text)
RETURNS void
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN (p_position).feed_key IS NULL OR (p_position).id IS NULL THEN
        eventstore._raise_invalid(
            format('%s must be a full feed position; got %s', p_argument, coalesce(p_position::text, 'NULL')),
            'Pass the feed_position of the last event processed, e.g. ''(1234,56)''.'
        )
    END;
$$;

COMMENT ON FUNCTION eventstore._check_feed_position(eventstore.feed_position, text) IS
'Internal: ES002 unless the argument is a feed position with both fields set.';

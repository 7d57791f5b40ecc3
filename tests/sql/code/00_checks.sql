-- The ES002 guards of sql/code/00_checks.sql: each refuses what it names with
-- ES002 (and the hint it is given) and lets the rest through, and each is
-- inlined into its caller: a guard that passes calls no function, and one in
-- a branch that is not taken never raises, not even while the planner folds
-- constants.
BEGIN;
SELECT plan(24);

SELECT throws_ok($$SELECT eventstore._check_not_empty(NULL, 'p_x')$$, 'ES002', NULL, '_check_not_empty: NULL');
SELECT throws_ok($$SELECT eventstore._check_not_empty('  ', 'p_x')$$, 'ES002', NULL, '_check_not_empty: blank');
SELECT lives_ok($$SELECT eventstore._check_not_empty('a', 'p_x')$$, '_check_not_empty: a name passes');

SELECT throws_ok($$SELECT eventstore._check_name(NULL, 'p_x')$$, 'ES002', NULL, '_check_name: NULL');
SELECT throws_ok($$SELECT eventstore._check_name('', 'p_x')$$, 'ES002', NULL, '_check_name: empty');
SELECT throws_ok(
    $$SELECT eventstore._check_name(repeat('a', 256), 'p_x')$$, 'ES002', NULL, '_check_name: 256 characters'
);
SELECT lives_ok($$SELECT eventstore._check_name(repeat('a', 255), 'p_x')$$, '_check_name: 255 characters pass');

SELECT throws_ok($$SELECT eventstore._check_not_null(NULL::uuid, 'p_x')$$, 'ES002', NULL, '_check_not_null: NULL');
SELECT lives_ok($$SELECT eventstore._check_not_null(now(), 'p_x')$$, '_check_not_null: a value passes');

SELECT throws_ok($$SELECT eventstore._check_positive(0, 'p_x')$$, 'ES002', NULL, '_check_positive: 0');
SELECT throws_ok($$SELECT eventstore._check_positive(NULL, 'p_x')$$, 'ES002', NULL, '_check_positive: NULL');
SELECT lives_ok($$SELECT eventstore._check_positive(1, 'p_x')$$, '_check_positive: 1 passes');

SELECT throws_ok($$SELECT eventstore._check_not_negative(-1, 'p_x')$$, 'ES002', NULL, '_check_not_negative: -1');
SELECT throws_ok($$SELECT eventstore._check_not_negative(NULL, 'p_x')$$, 'ES002', NULL, '_check_not_negative: NULL');
SELECT lives_ok($$SELECT eventstore._check_not_negative(0, 'p_x')$$, '_check_not_negative: 0 passes');

SELECT throws_ok(
    $$SELECT eventstore._check_feed_position(ROW(1, NULL)::eventstore.feed_position, 'p_x')$$,
    'ES002', NULL, '_check_feed_position: a half-NULL position'
);
SELECT throws_ok(
    $$SELECT eventstore._check_feed_position(NULL, 'p_x')$$, 'ES002', NULL, '_check_feed_position: NULL'
);
SELECT lives_ok(
    $$SELECT eventstore._check_feed_position(ROW(1, 2)::eventstore.feed_position, 'p_x')$$,
    '_check_feed_position: a full position passes'
);

-- The hint reaches the error: caught here to read it.
CREATE FUNCTION pg_temp.hint_of(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_hint text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN SQLSTATE 'ES002' THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN v_hint;
END;
$$;
SELECT is(
    pg_temp.hint_of($$SELECT eventstore._check_not_negative(-1, 'p_x', 'the hint')$$),
    'the hint',
    'a guard passes its hint on'
);
SELECT is(
    pg_temp.hint_of($$SELECT eventstore._check_not_null(NULL::text, 'p_x')$$),
    '',
    'a guard without a hint raises none'
);

-- Inlined: a passing guard with constant arguments plans to a constant.
CREATE FUNCTION pg_temp.explain(p_sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || p_sql;
END;
$$;
SELECT matches(
    (SELECT string_agg(l, ' ') FROM pg_temp.explain($$SELECT eventstore._check_positive(5, 'p_x')$$) AS l),
    'Output: NULL::void',
    'a passing guard is inlined and folded away'
);
SELECT matches(
    (SELECT string_agg(l, ' ') FROM pg_temp.explain($$SELECT eventstore._check_positive(-5, 'p_x')$$) AS l),
    'Output: eventstore._raise_invalid\(',
    'a failing guard is inlined: the plan calls _raise_invalid directly'
);
SELECT lives_ok(
    $$SELECT CASE WHEN random() > 2 THEN eventstore._check_positive(-5, 'p_x') END$$,
    'a guard in a branch not taken does not raise while the planner folds constants'
);
SELECT is(
    (
        SELECT p.provolatile
        FROM pg_catalog.pg_proc AS p
        WHERE p.oid = 'eventstore._raise_invalid(text, text)'::regprocedure
    ),
    's',
    '_raise_invalid is STABLE, never folded as a constant'
);

SELECT * FROM finish();
ROLLBACK;

-- plpgsql_check finds no error in any PL/pgSQL function of schema eventstore.
-- The assertions are set-based, so a function added later is checked too;
-- a failure lists the offending functions, lines and messages.
BEGIN;
SELECT plan(4);

-- Every PL/pgSQL function of the schema, paired with each table it is a
-- trigger on: plpgsql_check needs that table (relid) to check a trigger
-- function. Other functions are checked with relid 0.
CREATE TEMP VIEW checked_functions AS
SELECT DISTINCT
    p.oid::regprocedure AS function_name,
    coalesce(t.tgrelid, 0)::regclass AS relid
FROM pg_catalog.pg_proc AS p
INNER JOIN pg_catalog.pg_language AS l ON p.prolang = l.oid
LEFT JOIN pg_catalog.pg_trigger AS t ON p.oid = t.tgfoid
WHERE
    p.pronamespace = 'eventstore'::regnamespace
    AND l.lanname = 'plpgsql'
    AND (p.prorettype <> 'trigger'::regtype OR t.tgrelid IS NOT NULL);

SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.prorettype = 'trigger'::regtype
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t WHERE t.tgfoid = p.oid)
    $$,
    'every trigger function is attached to a table, so it can be checked'
);
SELECT ok(
    (
        SELECT
            count(*) FILTER (WHERE relid <> 0) > 0
            AND count(*) FILTER (WHERE relid = 0) > 0
        FROM checked_functions
    ),
    'the check covers both trigger functions and other functions'
);
SELECT is_empty(
    $$
        SELECT f.function_name, f.relid, c.lineno, c.message, c.detail
        FROM checked_functions AS f
        CROSS JOIN LATERAL plpgsql_check_function_tb(f.function_name, f.relid, fatal_errors => FALSE) AS c
        WHERE c.level = 'error'
    $$,
    'plpgsql_check reports no error in any eventstore function'
);
SELECT is_empty(
    $$
        SELECT f.function_name, f.relid, c.lineno, c.message
        FROM checked_functions AS f
        CROSS JOIN LATERAL plpgsql_check_function_tb(
            f.function_name, f.relid, fatal_errors => FALSE, security_warnings => TRUE
        ) AS c
        WHERE c.level = 'security'
    $$,
    'plpgsql_check sees no SQL injection risk in any eventstore function'
);

SELECT * FROM finish();
ROLLBACK;

-- The schema: tables, the status view, columns, keys, indexes, the
-- feed_position type, the public functions with their security settings,
-- and the triggers.
BEGIN;
SELECT plan(89);

SELECT has_schema('eventstore', 'schema eventstore exists');

-- domain_events keeps the seed's columns and names.
SELECT has_table('eventstore', 'domain_events', 'table domain_events exists');
SELECT columns_are(
    'eventstore', 'domain_events',
    ARRAY[
        'id', 'event_id', 'aggregate_type', 'aggregate_id', 'event_type', 'event_version',
        'payload', 'metadata', 'occurred_at', 'feed_key'
    ],
    'domain_events has the seed''s columns plus feed_key'
);
SELECT col_type_is('eventstore', 'domain_events', 'id', 'bigint', 'domain_events.id is bigint');
SELECT col_type_is('eventstore', 'domain_events', 'event_id', 'uuid', 'domain_events.event_id is uuid');
SELECT col_type_is('eventstore', 'domain_events', 'aggregate_type', 'text', 'domain_events.aggregate_type is text');
SELECT col_type_is('eventstore', 'domain_events', 'aggregate_id', 'uuid', 'domain_events.aggregate_id is uuid');
SELECT col_type_is('eventstore', 'domain_events', 'event_type', 'text', 'domain_events.event_type is text');
SELECT col_type_is(
    'eventstore', 'domain_events', 'event_version', 'integer', 'domain_events.event_version is integer'
);
SELECT col_type_is('eventstore', 'domain_events', 'payload', 'jsonb', 'domain_events.payload is jsonb');
SELECT col_type_is('eventstore', 'domain_events', 'metadata', 'jsonb', 'domain_events.metadata is jsonb');
SELECT col_type_is(
    'eventstore', 'domain_events', 'occurred_at', 'timestamp with time zone',
    'domain_events.occurred_at is timestamptz'
);
SELECT col_type_is('eventstore', 'domain_events', 'feed_key', 'bigint', 'domain_events.feed_key is bigint');
SELECT is_empty(
    $$
        SELECT a.attname
        FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = 'eventstore.domain_events'::regclass
          AND a.attnum > 0
          AND NOT a.attisdropped
          AND NOT a.attnotnull
    $$,
    'every column of domain_events is NOT NULL'
);
SELECT col_is_pk('eventstore', 'domain_events', 'id', 'domain_events.id is the primary key');
SELECT is(
    (
        SELECT a.attidentity::text
        FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = 'eventstore.domain_events'::regclass AND a.attname = 'id'
    ),
    'a',
    'domain_events.id is an identity column (GENERATED ALWAYS)'
);
SELECT col_is_unique('eventstore', 'domain_events', ARRAY['event_id'], 'domain_events.event_id is unique');
SELECT col_is_unique(
    'eventstore', 'domain_events', ARRAY['aggregate_id', 'event_version'],
    'domain_events (aggregate_id, event_version) is unique'
);
SELECT col_has_default('eventstore', 'domain_events', 'metadata', 'domain_events.metadata has a default');
SELECT col_has_default('eventstore', 'domain_events', 'occurred_at', 'domain_events.occurred_at has a default');
SELECT has_index(
    'eventstore', 'domain_events', 'domain_events_feed_idx', ARRAY['feed_key', 'id'],
    'the feed is indexed on (feed_key, id)'
);
SELECT has_index(
    'eventstore', 'domain_events', 'domain_events_occurred_at_idx', ARRAY['occurred_at'],
    'domain_events is indexed on occurred_at'
);
SELECT has_check('eventstore', 'domain_events', 'domain_events has CHECK constraints (payload, metadata, version)');

-- The stream table: one row per aggregate, the lock of its writers.
SELECT has_table('eventstore', 'streams', 'table streams exists');
SELECT columns_are(
    'eventstore', 'streams',
    ARRAY['aggregate_id', 'aggregate_type', 'version', 'last_feed_key', 'last_occurred_at', 'created_at'],
    'streams has its columns'
);
SELECT col_is_pk('eventstore', 'streams', 'aggregate_id', 'streams.aggregate_id is the primary key');
SELECT col_type_is('eventstore', 'streams', 'version', 'integer', 'streams.version is integer');
SELECT col_type_is('eventstore', 'streams', 'last_feed_key', 'bigint', 'streams.last_feed_key is bigint');

-- Settings: exactly one row, holding the feed key offset.
SELECT has_table('eventstore', 'settings', 'table settings exists');
SELECT col_type_is('eventstore', 'settings', 'feed_key_offset', 'bigint', 'settings.feed_key_offset is bigint');
SELECT col_type_is('eventstore', 'settings', 'notify_mode', 'text', 'settings.notify_mode is text');
SELECT results_eq(
    'SELECT feed_key_offset FROM eventstore.settings',
    ARRAY[0::bigint],
    'settings holds one row, offset 0 on a fresh install'
);
SELECT throws_ok(
    'INSERT INTO eventstore.settings (singleton) VALUES (FALSE)',
    '23514',
    NULL,
    'settings cannot hold a second row'
);

-- Aggregate types and their snapshots.
SELECT has_table('eventstore', 'aggregate_types', 'table aggregate_types exists');
SELECT col_is_pk(
    'eventstore', 'aggregate_types', 'aggregate_type', 'aggregate_types.aggregate_type is the primary key'
);
SELECT col_type_is('eventstore', 'aggregate_types', 'fold', 'regprocedure', 'aggregate_types.fold is a regprocedure');
SELECT has_table('eventstore', 'aggregate_snapshots', 'table aggregate_snapshots exists');
SELECT columns_are(
    'eventstore', 'aggregate_snapshots',
    ARRAY['aggregate_type', 'aggregate_id', 'version', 'state', 'created_at', 'fold_identity'],
    'aggregate_snapshots has the seed''s columns plus fold_identity'
);
SELECT col_is_pk(
    'eventstore', 'aggregate_snapshots', ARRAY['aggregate_type', 'aggregate_id', 'version'],
    'aggregate_snapshots has one row per aggregate and version'
);

-- Projections: the registry and its checkpoints.
SELECT has_table('eventstore', 'projections', 'table projections exists');
SELECT columns_are(
    'eventstore', 'projections',
    ARRAY[
        'name', 'handler', 'event_types', 'mode', 'reset', 'state', 'checkpoint_feed_key', 'checkpoint_id',
        'events_applied', 'last_error', 'failed_event_id', 'failed_feed_key', 'registered_at', 'updated_at'
    ],
    'projections has its columns'
);
SELECT col_is_pk('eventstore', 'projections', 'name', 'projections.name is the primary key');
SELECT col_type_is(
    'eventstore', 'projections', 'handler', 'regprocedure', 'projections.handler is a regprocedure'
);
SELECT col_type_is('eventstore', 'projections', 'reset', 'regprocedure', 'projections.reset is a regprocedure');
SELECT col_type_is('eventstore', 'projections', 'event_types', 'text[]', 'projections.event_types is text[]');
SELECT col_default_is(
    'eventstore', 'projections', 'state', 'running'::text, 'a new projection is running'
);
SELECT col_default_is(
    'eventstore', 'projections', 'checkpoint_feed_key', -1::bigint, 'a new projection''s checkpoint feed key is -1'
);
SELECT col_default_is(
    'eventstore', 'projections', 'checkpoint_id', 0::bigint, 'a new projection''s checkpoint id is 0'
);
SELECT throws_ok(
    $$INSERT INTO eventstore.projections (name, mode) VALUES ('p', 'async')$$,
    '23514', NULL, 'projections: a database projection needs a handler'
);
SELECT throws_ok(
    $$INSERT INTO eventstore.projections (name, handler, mode) VALUES ('p', 'eventstore.feed_fence()', 'external')$$,
    '23514', NULL, 'projections: an external projection has no handler'
);
SELECT throws_ok(
    $$INSERT INTO eventstore.projections (name, mode, state) VALUES ('p', 'external', 'sleeping')$$,
    '23514', NULL, 'projections: state is running, paused, failed or rebuilding'
);
SELECT throws_ok(
    $$INSERT INTO eventstore.projections (name, mode) VALUES ('p', 'sync')$$,
    '23514', NULL, 'projections: mode is inline, async or external'
);
SELECT has_view('eventstore', 'projection_status', 'view projection_status exists');
SELECT columns_are(
    'eventstore', 'projection_status',
    ARRAY[
        'name', 'mode', 'state', 'position', 'lag', 'events_applied', 'last_error', 'failed_event_id',
        'rebuild_progress', 'event_types', 'handler', 'updated_at'
    ],
    'projection_status has the contract''s columns'
);
SELECT col_type_is(
    'eventstore', 'projection_status', 'position', 'eventstore.feed_position',
    'projection_status.position is a feed_position'
);
SELECT col_type_is('eventstore', 'projection_status', 'lag', 'bigint', 'projection_status.lag is bigint');

-- The install records its version.
SELECT has_table('eventstore', 'schema_migrations', 'table schema_migrations exists');
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.schema_migrations
        WHERE version ~ '^[0-9]+\.[0-9]+\.[0-9]+'
    ),
    1::bigint,
    'schema_migrations records the installed version'
);

-- The position type of the feed.
SELECT has_composite('eventstore', 'feed_position', 'composite type feed_position exists');
SELECT col_type_is('eventstore', 'feed_position', 'feed_key', 'bigint', 'feed_position.feed_key is bigint');
SELECT col_type_is('eventstore', 'feed_position', 'id', 'bigint', 'feed_position.id is bigint');
SELECT is(
    ROW(12, 34)::eventstore.feed_position::text,
    '(12,34)',
    'a feed_position''s text form is (feed_key,id)'
);

-- The public functions, with the contract's exact signatures.
SELECT has_function(
    'eventstore', 'append_events', ARRAY['text', 'uuid', 'integer', 'jsonb'],
    'append_events(text, uuid, integer, jsonb) exists'
);
SELECT function_returns(
    'eventstore', 'append_events', ARRAY['text', 'uuid', 'integer', 'jsonb'], 'setof eventstore.domain_events',
    'append_events returns SETOF domain_events'
);
SELECT has_function(
    'eventstore', 'load_events', ARRAY['uuid', 'integer'], 'load_events(uuid, integer) exists'
);
SELECT function_returns(
    'eventstore', 'load_events', ARRAY['uuid', 'integer'], 'setof eventstore.domain_events',
    'load_events returns SETOF domain_events'
);
SELECT has_function(
    'eventstore', 'read_all', ARRAY['eventstore.feed_position', 'integer', 'text[]', 'text[]'],
    'read_all(feed_position, integer, text[], text[]) exists'
);
SELECT has_function(
    'eventstore', 'read_all', ARRAY['text', 'integer', 'text[]', 'text[]'],
    'read_all(text, integer, text[], text[]) exists'
);
SELECT has_function('eventstore', 'after_restore', ARRAY[]::name[], 'after_restore() exists');
SELECT is(
    (SELECT pg_catalog.pg_get_function_arguments('eventstore.append_events(text, uuid, integer, jsonb)'::regprocedure)),
    'p_aggregate_type text, p_aggregate_id uuid, p_expected_version integer, p_events jsonb',
    'append_events has the contract''s parameter names'
);
SELECT is(
    (SELECT pg_catalog.pg_get_function_arguments('eventstore.load_events(uuid, integer)'::regprocedure)),
    'p_aggregate_id uuid, p_from_version integer DEFAULT 0',
    'load_events has the contract''s parameter names and default'
);
SELECT is(
    (SELECT pg_catalog.pg_get_function_result(
        'eventstore.read_all(eventstore.feed_position, integer, text[], text[])'::regprocedure
    )),
    'SETOF eventstore.feed_event',
    'read_all returns feed_event rows'
);
SELECT is(
    array(
        SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = 'eventstore.feed_event'::regclass AND a.attnum > 0
        ORDER BY a.attnum
    ),
    array(
        SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = 'eventstore.domain_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
    ) || 'feed_position eventstore.feed_position'::text,
    'a feed_event row is every domain_events column plus feed_position'
);
SELECT results_eq(
    $$
        SELECT pg_catalog.pg_get_function_arguments(f.signature::regprocedure)
        FROM (
            VALUES
            (1, 'eventstore.register_aggregate_type(text, regprocedure, jsonb, integer)'),
            (2, 'eventstore.load_aggregate(text, uuid)'),
            (3, 'eventstore.aggregate_state_at(text, uuid, timestamptz)'),
            (4, 'eventstore.aggregate_state_at_version(text, uuid, integer)')
        ) AS f (n, signature)
        ORDER BY f.n
    $$,
    ARRAY[
        'p_aggregate_type text, p_fold regprocedure, p_initial_state jsonb DEFAULT ''{}''::jsonb, '
        || 'p_snapshot_every integer DEFAULT 50',
        'p_aggregate_type text, p_aggregate_id uuid',
        'p_aggregate_type text, p_aggregate_id uuid, p_as_of timestamp with time zone',
        'p_aggregate_type text, p_aggregate_id uuid, p_version integer'
    ],
    'the aggregate functions have the contract''s parameter names and defaults'
);
SELECT is_empty(
    $$
        SELECT f.signature
        FROM (
            VALUES
            ('eventstore.load_aggregate(text, uuid)'),
            ('eventstore.aggregate_state_at(text, uuid, timestamptz)'),
            ('eventstore.aggregate_state_at_version(text, uuid, integer)')
        ) AS f (signature)
        WHERE pg_catalog.pg_get_function_result(f.signature::regprocedure) <> 'TABLE(state jsonb, version integer)'
    $$,
    'load_aggregate and the state_at functions return TABLE(state jsonb, version integer)'
);
SELECT is_empty(
    $$
        SELECT f.signature
        FROM (
            VALUES
            ('eventstore.register_aggregate_type(text, regprocedure, jsonb, integer)'),
            ('eventstore.load_aggregate(text, uuid)'),
            ('eventstore.aggregate_state_at(text, uuid, timestamptz)'),
            ('eventstore.aggregate_state_at_version(text, uuid, integer)'),
            ('eventstore.aggregate_history(uuid)'),
            ('eventstore.event_counts(timestamptz, timestamptz, text)'),
            ('eventstore.take_snapshot(text, uuid)'),
            ('eventstore.prune_snapshots(text, integer)')
        ) AS f (signature)
        INNER JOIN pg_catalog.pg_proc AS p ON p.oid = f.signature::regprocedure
        WHERE NOT p.prosecdef
    $$,
    'the aggregate, snapshot and temporal functions are SECURITY DEFINER'
);
SELECT results_eq(
    $$
        SELECT f.signature, pg_catalog.pg_get_function_arguments(f.signature::regprocedure),
            pg_catalog.pg_get_function_result(f.signature::regprocedure)
        FROM (
            VALUES
            (1, 'eventstore.register_projection(text, regprocedure, text[], text, regprocedure)'),
            (2, 'eventstore.register_external_projection(text, text[])'),
            (3, 'eventstore.unregister_projection(text)'),
            (4, 'eventstore.pause_projection(text)'),
            (5, 'eventstore.resume_projection(text)'),
            (6, 'eventstore.retry_projection(text)'),
            (7, 'eventstore.skip_projection_event(text)'),
            (8, 'eventstore.run_projection(text, integer)'),
            (9, 'eventstore.rebuild_projection(text)'),
            (10, 'eventstore.rebuild_progress()'),
            (11, 'eventstore.lock_projection(text)'),
            (12, 'eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)'),
            (13, 'eventstore.fail_projection(text, eventstore.feed_position, text)')
        ) AS f (n, signature)
        ORDER BY f.n
    $$,
    $$
        VALUES
        (
            'eventstore.register_projection(text, regprocedure, text[], text, regprocedure)',
            'p_name text, p_handler regprocedure, p_event_types text[] DEFAULT NULL::text[], '
            || 'p_mode text DEFAULT ''inline''::text, p_reset regprocedure DEFAULT NULL::regprocedure',
            'void'
        ),
        (
            'eventstore.register_external_projection(text, text[])',
            'p_name text, p_event_types text[] DEFAULT NULL::text[]',
            'void'
        ),
        ('eventstore.unregister_projection(text)', 'p_name text', 'void'),
        ('eventstore.pause_projection(text)', 'p_name text', 'void'),
        ('eventstore.resume_projection(text)', 'p_name text', 'void'),
        ('eventstore.retry_projection(text)', 'p_name text', 'void'),
        ('eventstore.skip_projection_event(text)', 'p_name text', 'bigint'),
        ('eventstore.run_projection(text, integer)', 'p_name text, p_max_events integer DEFAULT 1000', 'integer'),
        ('eventstore.rebuild_projection(text)', 'p_name text', 'bigint'),
        ('eventstore.rebuild_progress()', '', 'TABLE(name text, progress text, pid integer)'),
        (
            'eventstore.lock_projection(text)',
            'p_name text',
            'TABLE(after eventstore.feed_position, state text, event_types text[])'
        ),
        (
            'eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)',
            'p_name text, p_position eventstore.feed_position, p_events_applied integer',
            'void'
        ),
        (
            'eventstore.fail_projection(text, eventstore.feed_position, text)',
            'p_name text, p_position eventstore.feed_position, p_error text',
            'void'
        )
    $$,
    'the projection functions exist with the contract''s parameter names, defaults and results'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.oid IN (
            'eventstore.register_projection(text, regprocedure, text[], text, regprocedure)'::regprocedure,
            'eventstore.register_external_projection(text, text[])'::regprocedure,
            'eventstore.unregister_projection(text)'::regprocedure,
            'eventstore.pause_projection(text)'::regprocedure,
            'eventstore.resume_projection(text)'::regprocedure,
            'eventstore.retry_projection(text)'::regprocedure,
            'eventstore.skip_projection_event(text)'::regprocedure,
            'eventstore.run_projection(text, integer)'::regprocedure,
            'eventstore.rebuild_projection(text)'::regprocedure,
            'eventstore.rebuild_progress()'::regprocedure,
            'eventstore.lock_projection(text)'::regprocedure,
            'eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)'::regprocedure,
            'eventstore.fail_projection(text, eventstore.feed_position, text)'::regprocedure
        )
          AND NOT p.prosecdef
    $$,
    'the projection functions are SECURITY DEFINER'
);
SELECT hasnt_trigger(
    'eventstore', 'domain_events', 'domain_events_inline_projections',
    'a fresh install has no inline projection trigger (it comes with the first inline projection)'
);
SELECT is_definer(
    'eventstore', 'append_events', ARRAY['text', 'uuid', 'integer', 'jsonb'], 'append_events is SECURITY DEFINER'
);
SELECT is_definer('eventstore', 'load_events', ARRAY['uuid', 'integer'], 'load_events is SECURITY DEFINER');
SELECT is_definer(
    'eventstore', 'read_all', ARRAY['eventstore.feed_position', 'integer', 'text[]', 'text[]'],
    'read_all(feed_position, ...) is SECURITY DEFINER'
);
SELECT is_definer(
    'eventstore', 'read_all', ARRAY['text', 'integer', 'text[]', 'text[]'], 'read_all(text, ...) is SECURITY DEFINER'
);
SELECT is_definer('eventstore', 'after_restore', ARRAY[]::name[], 'after_restore is SECURITY DEFINER');
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.prosecdef
          AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY(p.proconfig), FALSE)
    $$,
    'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND pg_catalog.obj_description(p.oid, 'pg_proc') IS NULL
    $$,
    'every function in schema eventstore has a COMMENT'
);

-- Triggers: immutability and the wake-up NOTIFY.
SELECT trigger_is(
    'eventstore', 'domain_events', 'domain_events_refuse_update_delete', 'eventstore', '_refuse_event_change',
    'UPDATE and DELETE on domain_events fire _refuse_event_change()'
);
SELECT trigger_is(
    'eventstore', 'domain_events', 'domain_events_refuse_truncate', 'eventstore', '_refuse_event_change',
    'TRUNCATE on domain_events fires _refuse_event_change()'
);
SELECT trigger_is(
    'eventstore', 'streams', 'streams_notify', 'eventstore', '_notify_commit',
    'writes to streams fire _notify_commit() (at commit: tests/sql/code/06_notify.sql)'
);

SELECT * FROM finish();
ROLLBACK;

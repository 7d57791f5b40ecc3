-- append_events refuses bad input with ES002 and version conflicts with
-- ES001, and writes nothing when it refuses.
BEGIN;
SELECT plan(88);

-- Runs a call that must fail with p_code, then checks that the event store
-- still holds as many events and streams as before: two assertions per call.
CREATE FUNCTION pg_temp.refused(p_call text, p_code text, p_description text)
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_before bigint[] := ARRAY[
        (SELECT count(*) FROM eventstore.domain_events),
        (SELECT count(*) FROM eventstore.streams)
    ];
BEGIN
    RETURN NEXT throws_ok(p_call, p_code, NULL, p_description);
    RETURN NEXT is(
        ARRAY[(SELECT count(*) FROM eventstore.domain_events), (SELECT count(*) FROM eventstore.streams)],
        v_before,
        p_description || ': nothing written'
    );
END;
$fn$;

-- An existing aggregate at version 1.
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {}}, {"event_type": "ItemAdded", "payload": {}}]'
        )
    ),
    2::bigint,
    'setup: an Order at version 1'
);

-- ES002: the arguments. Each call targets a new aggregate, so it would be
-- stored if the argument were accepted.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events(NULL, 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'NULL aggregate type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'empty aggregate type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('   ', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'blank aggregate type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events(repeat('T', 256), 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'aggregate type longer than 255 characters'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', NULL, -1, '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'NULL aggregate id'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -2,
        '[{"event_type": "E", "payload": {}}]')$$,
    'ES002', 'expected version below -1'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, NULL)$$,
    'ES002', 'NULL events'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '{"event_type": "E", "payload": {}}')$$,
    'ES002', 'events as an object, not an array'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, '"E"')$$,
    'ES002', 'events as a JSON string'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, 'null')$$,
    'ES002', 'events as JSON null'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, '[]')$$,
    'ES002', 'an empty events array'
);

-- ES002: the events.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, '[1]')$$,
    'ES002', 'an event that is a number'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, '["E"]')$$,
    'ES002', 'an event that is a string'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1, '[null]')$$,
    'ES002', 'an event that is JSON null'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "version": 3}]')$$,
    'ES002', 'an event with an unknown key'
);
SELECT throws_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}, {"eventType": "E", "payload": {}}]')$$,
    'ES002',
    'p_events[1] has an unknown key "eventType"; expected event_type, payload, metadata, event_id',
    'an unknown key is named in the message, with the index of its event and the keys expected'
);
-- A single event is checked without the query over the elements
-- (_event_problem() directly): the same rule, the same message.
SELECT throws_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "zeta": 1, "alpha": 2}]')$$,
    'ES002',
    'p_events[0] has an unknown key "alpha"; expected event_type, payload, metadata, event_id',
    'a single event: its first unknown key in alphabetical order, at index 0'
);
SELECT throws_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": "not-a-uuid"}]')$$,
    'ES002',
    'p_events[0] has an "event_id" that is not a UUID string',
    'a single event: a malformed event_id named at index 0'
);
SELECT throws_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}}, {"event_type": "E", "payload": [], "zeta": 1, "alpha": 2}]')$$,
    'ES002',
    'p_events[1] has an unknown key "alpha"; expected event_type, payload, metadata, event_id',
    'several events: the same first unknown key as for a single event'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"payload": {}}]')$$,
    'ES002', 'an event without event_type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "", "payload": {}}]')$$,
    'ES002', 'an empty event_type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "  ", "payload": {}}]')$$,
    'ES002', 'a blank event_type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": 7, "payload": {}}]')$$,
    'ES002', 'an event_type that is a number'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": null, "payload": {}}]')$$,
    'ES002', 'an event_type that is JSON null'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        jsonb_build_array(jsonb_build_object('event_type', repeat('E', 256), 'payload', '{}'::jsonb)))$$,
    'ES002', 'an event_type longer than 255 characters'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E"}]')$$,
    'ES002', 'an event without payload'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": [1, 2]}]')$$,
    'ES002', 'a payload that is an array'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": "x"}]')$$,
    'ES002', 'a payload that is a string'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": null}]')$$,
    'ES002', 'a payload that is JSON null'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "metadata": []}]')$$,
    'ES002', 'metadata that is an array'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "metadata": "user=ann"}]')$$,
    'ES002', 'metadata that is a string'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": "not-a-uuid"}]')$$,
    'ES002', 'an event_id that is not a UUID'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": "e0000000-0000-4000-8000-0000000000011"}]')$$,
    'ES002', 'an event_id with a digit too many'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": 42}]')$$,
    'ES002', 'an event_id that is a number'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        jsonb_build_array(jsonb_build_object('event_type', 'E', 'payload',
            jsonb_build_object('blob', repeat('x', 1100000)))))$$,
    'ES002', 'an event larger than 1 MiB'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": "e0000000-0000-4000-8000-000000000001"},
          {"event_type": "F", "payload": {}, "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES002', 'the same event_id twice in one call'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "E", "payload": {}, "event_id": "e0000000-0000-4000-8000-00000000000a"},
          {"event_type": "F", "payload": {}, "event_id": "E0000000-0000-4000-8000-00000000000A"}]')$$,
    'ES002', 'the same event_id twice in one call, in lower and upper case'
);

-- One call is all events or none: a bad last event refuses the good ones too.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 1,
        '[{"event_type": "ItemAdded", "payload": {}}, {"event_type": "ItemAdded", "payload": {}},
          {"event_type": "ItemAdded", "payload": 3}]')$$,
    'ES002', 'a call whose third event is bad'
);

-- ES001: the expected version does not match.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderPlaced", "payload": {}}]')$$,
    'ES001', 'expected version -1 for an existing aggregate'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', 0,
        '[{"event_type": "ItemAdded", "payload": {}}]')$$,
    'ES001', 'expected version 0 for a missing aggregate'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 0,
        '[{"event_type": "ItemAdded", "payload": {}}, {"event_type": "ItemAdded", "payload": {}}]')$$,
    'ES001', 'a stale expected version'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 5,
        '[{"event_type": "ItemAdded", "payload": {}}]')$$,
    'ES001', 'an expected version ahead of the aggregate'
);

-- ES002: an aggregate keeps its type, whatever the expected version.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Customer', 'a0000000-0000-4000-8000-000000000001', 1,
        '[{"event_type": "CustomerRegistered", "payload": {}}]')$$,
    'ES002', 'appending under another type (matching expected version)'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Customer', 'a0000000-0000-4000-8000-000000000001', NULL,
        '[{"event_type": "CustomerRegistered", "payload": {}}]')$$,
    'ES002', 'appending under another type (no expected version)'
);

-- The limits themselves are accepted.
SELECT lives_ok(
    $$SELECT eventstore.append_events(repeat('T', 255), 'a0000000-0000-4000-8000-000000000002', -1,
        jsonb_build_array(jsonb_build_object('event_type', repeat('E', 255), 'payload', '{}'::jsonb)))$$,
    'an aggregate type and an event_type of 255 characters are accepted'
);
SELECT lives_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000003', -1,
        jsonb_build_array(jsonb_build_object('event_type', 'E', 'payload',
            jsonb_build_object('blob', repeat('x', 1000000)))))$$,
    'an event just under 1 MiB is accepted'
);
SELECT results_eq(
    $$SELECT aggregate_type, version FROM eventstore.streams ORDER BY aggregate_id$$,
    $$VALUES ('Order', 1), (repeat('T', 255), 0), ('Order', 0)$$,
    'only the accepted calls created or moved streams'
);

SELECT * FROM finish();
ROLLBACK;

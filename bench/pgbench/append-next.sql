-- W2: append_events() to the client's own aggregate (md5(run tag || client_id), created at version 0
-- before the run) with the version it last wrote. -D run, -D v=0, -D events: the JSON array of events.
SELECT event_version AS v
FROM eventstore.append_events('Order', md5(:run::text || '-' || :client_id::text)::uuid, :v, :events) \gset

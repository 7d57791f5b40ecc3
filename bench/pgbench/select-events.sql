-- The R1 ceiling and that of loads without snapshots: all of one aggregate's events. -D aggregate.
SELECT * FROM bench.ceiling_events WHERE aggregate_id = :aggregate ORDER BY event_version;

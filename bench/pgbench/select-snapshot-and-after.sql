-- The ceiling of loads with snapshots: the latest snapshot and the events after it, unfolded.
-- -D aggregate.
SELECT s.version, s.state, ARRAY(SELECT d FROM eventstore.domain_events AS d
    WHERE d.aggregate_id = s.aggregate_id AND d.event_version > s.version ORDER BY d.event_version)
FROM (SELECT * FROM eventstore.aggregate_snapshots AS a
    WHERE a.aggregate_type = 'Order' AND a.aggregate_id = :aggregate
    ORDER BY a.version DESC LIMIT 1) AS s;

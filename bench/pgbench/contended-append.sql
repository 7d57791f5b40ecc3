-- W4: 8 clients on 4 aggregates (md5(run tag || '-w4-' || a), created before the run): read the
-- current version, append with it; bench.try_append() turns a conflict (ES001) into false.
-- -D run, -D events: the JSON array of events.
\set a random(1, 4)
SELECT s.version AS v FROM eventstore.streams AS s
WHERE s.aggregate_id = md5(:run::text || '-w4-' || :a::text)::uuid \gset
SELECT bench.try_append('Order', md5(:run::text || '-w4-' || :a::text)::uuid, :v, :events);

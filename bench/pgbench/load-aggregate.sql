-- Aggregate loads: load_aggregate() of one aggregate. -D type: Order or OrderNoSnapshots, -D aggregate.
SELECT * FROM eventstore.load_aggregate(:type, :aggregate);

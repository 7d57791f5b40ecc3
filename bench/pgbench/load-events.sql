-- R1: load_events() of one aggregate. -D aggregate: its id.
SELECT * FROM eventstore.load_events(:aggregate);

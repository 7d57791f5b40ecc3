-- W1 and W3: append_events() to a new aggregate. -D events: the JSON array of events.
SELECT * FROM eventstore.append_events('Order', gen_random_uuid(), -1, :events);

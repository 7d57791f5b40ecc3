-- The inline-projection overhead: a new order with a unique order number (the read model requires
-- one), the same script with and without the projection. -D payload: the OrderPlaced payload.
SELECT e.* FROM (SELECT gen_random_uuid() AS id) AS o CROSS JOIN LATERAL eventstore.append_events(
    'Order', o.id, -1,
    jsonb_build_array(jsonb_build_object('event_type', 'OrderPlaced', 'payload',
        :payload::jsonb || jsonb_build_object('orderNumber', 'ORD-' || o.id::text)))
) AS e;

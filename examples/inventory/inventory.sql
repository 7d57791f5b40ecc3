-- A warehouse's stock of one SKU as an aggregate: every receipt and every
-- pick is an event, so a busy SKU has a long history. `pg-eventstore demo`
-- uses it to show what snapshots save. Install after the eventstore schema:
--   psql -X -v ON_ERROR_STOP=1 -f examples/inventory/inventory.sql

CREATE SCHEMA inventory;

-- Purpose: the StockItem fold. StockReceived adds its quantity to what is on
-- hand, StockPicked takes it away; both count as a movement. Unknown event
-- types leave the state as it is.
CREATE FUNCTION inventory.stock_fold(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_event.event_type
        WHEN 'StockReceived' THEN p_state || jsonb_build_object(
            'sku', p_event.payload -> 'sku',
            'onHand', (p_state ->> 'onHand')::integer + (p_event.payload ->> 'quantity')::integer,
            'received', (p_state ->> 'received')::integer + (p_event.payload ->> 'quantity')::integer,
            'movements', (p_state ->> 'movements')::integer + 1
        )
        WHEN 'StockPicked' THEN p_state || jsonb_build_object(
            'sku', p_event.payload -> 'sku',
            'onHand', (p_state ->> 'onHand')::integer - (p_event.payload ->> 'quantity')::integer,
            'picked', (p_state ->> 'picked')::integer + (p_event.payload ->> 'quantity')::integer,
            'movements', (p_state ->> 'movements')::integer + 1
        )
        ELSE p_state
    END;
$$;

COMMENT ON FUNCTION inventory.stock_fold(jsonb, eventstore.domain_events) IS
'The StockItem fold: quantity on hand after receipts (StockReceived) and picks (StockPicked). Pure.';

SELECT eventstore.register_aggregate_type(
    'StockItem',
    'inventory.stock_fold(jsonb, eventstore.domain_events)',
    '{"sku": null, "onHand": 0, "received": 0, "picked": 0, "movements": 0}',
    50
);

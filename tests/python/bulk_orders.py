"""Many orders' events appended in one statement, for the projection tests (test_projections.py and
test_projection_runners_async.py)."""

from __future__ import annotations

from psycopg import sql

# n orders: placed, then shipped, then delivered or cancelled, in set-based appends.
GENERATE_ORDERS = sql.SQL(
    """
DO $$
DECLARE
    v_id uuid;
BEGIN
    FOR i IN 1..{orders} LOOP
        v_id := gen_random_uuid();
        PERFORM eventstore.append_events('Order', v_id, -1, jsonb_build_array(
            jsonb_build_object('event_type', 'OrderPlaced', 'payload', jsonb_build_object(
                'orderNumber', 'ORD-' || v_id, 'customerId', gen_random_uuid(),
                'lineItems', jsonb_build_array(jsonb_build_object('sku', 'SKU-' || i, 'quantity', 1 + i % 3,
                                                                  'unitPrice', 9.5)),
                'subtotal', 9.5 * (1 + i % 3), 'shippingCost', 4.95, 'total', 9.5 * (1 + i % 3) + 4.95))));
        PERFORM eventstore.append_events('Order', v_id, 0, jsonb_build_array(
            jsonb_build_object('event_type', 'OrderShipped', 'payload', jsonb_build_object('carrier', 'DHL'))));
        PERFORM eventstore.append_events('Order', v_id, 1, jsonb_build_array(
            jsonb_build_object('event_type', CASE WHEN i % 5 = 0 THEN 'OrderCancelled' ELSE 'OrderDelivered' END,
                               'payload', '{{}}'::jsonb)));
    END LOOP;
END
$$
"""
)


def generate_orders(orders: int) -> sql.Composed:
    """The statement that appends n orders' lifecycles: 3n events."""
    return GENERATE_ORDERS.format(orders=sql.Literal(orders))

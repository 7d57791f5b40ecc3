# Generated from async_commands.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""Command handlers of the Order domain: validate the input, run the command on the order, save it.

Each handler goes through AggregateRepository.run_command, so a conflicting
concurrent change makes it reload the order and run the command again, and
a rule the order's status breaks raises DomainError with nothing saved.

place_order computes the amounts and the order number:
- subtotal: quantity x unit price over the line items, in cents;
- shipping: free for a subtotal of 100.00 or more, else a flat 4.95
  (the same in every country: a demo rule, easy to replace);
- total: subtotal + shipping;
- order number: ORD-<UTC date of placing, YYYYMMDD>-<the first 8 hex digits
  of the order id, upper case>. Derived from the id, so a retried command
  computes the same number; 8 digits make a clash between two orders of one
  day unlikely (about 1 in 10,000 at 1,000 orders a day).

Written for the asyncio API; commands.py, the same handlers over AggregateRepository,
is generated from this file by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from examples.orders.order import (
    LineItem,
    Order,
    OrderCancelled,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
    PayloadInput,
    ShippingAddress,
    cents,
    line_total,
)
from pg_eventstore.aggregate import AggregateRepository

FREE_SHIPPING_FROM = 100.00
FLAT_SHIPPING = 4.95


class PlaceOrder(BaseModel):
    """The input of place_order (the amounts and the order number are computed, not given)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True
    )

    order_id: UUID = Field(default_factory=uuid4)
    customer_id: UUID
    line_items: list[LineItem] = Field(min_length=1)
    shipping_address: ShippingAddress


def shipping_cost(address: ShippingAddress, subtotal: float) -> float:
    """What shipping costs: free from FREE_SHIPPING_FROM on, else FLAT_SHIPPING, wherever the address is."""
    return 0.0 if cents(subtotal) >= cents(FREE_SHIPPING_FROM) else FLAT_SHIPPING


def order_number(order_id: UUID, placed_on: date) -> str:
    """ORD-<UTC date as YYYYMMDD>-<first 8 hex digits of the order id>, e.g. ORD-20261126-28BE2A54."""
    return f"ORD-{placed_on:%Y%m%d}-{order_id.hex[:8].upper()}"


def place_order(
    repository: AggregateRepository[Order],
    command: PlaceOrder | Mapping[str, Any],
    *,
    now: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Order:
    """Place a new order with computed amounts and order number; returns the saved order.

    Raises pydantic's ValidationError for invalid input and DomainError when
    the order id is taken by an order placed before.
    """
    request = command if isinstance(command, PlaceOrder) else PlaceOrder.model_validate(dict(command))
    placed_on = (now or datetime.now(UTC)).astimezone(UTC).date()
    subtotal = line_total(request.line_items)
    shipping = shipping_cost(request.shipping_address, subtotal)
    details = OrderPlaced(
        order_number=order_number(request.order_id, placed_on),
        customer_id=request.customer_id,
        line_items=request.line_items,
        shipping_address=request.shipping_address,
        subtotal=subtotal,
        shipping_cost=shipping,
        total=(cents(subtotal) + cents(shipping)) / 100,
    )
    return repository.run_command(request.order_id, lambda order: order.place(details, metadata))


def ship_order(
    repository: AggregateRepository[Order],
    order_id: UUID,
    details: OrderShipped | PayloadInput,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Order:
    """Ship a placed order."""
    return repository.run_command(order_id, lambda order: order.ship(details, metadata))


def deliver_order(
    repository: AggregateRepository[Order],
    order_id: UUID,
    details: OrderDelivered | PayloadInput,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Order:
    """Confirm the delivery of a shipped order."""
    return repository.run_command(order_id, lambda order: order.deliver(details, metadata))


def cancel_order(
    repository: AggregateRepository[Order],
    order_id: UUID,
    details: OrderCancelled | PayloadInput,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Order:
    """Cancel a placed or shipped order."""
    return repository.run_command(order_id, lambda order: order.cancel(details, metadata))

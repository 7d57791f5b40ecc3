"""The Order domain in Python: the event payloads as pydantic models, and the Order aggregate.

The payload models are the Python counterpart of the seed's event schemas.
Field names are snake_case in Python and camelCase in the stored payloads
(the aliases), so the SQL fold in orders.sql reads `orderNumber`, `lineItems`
and so on.

Two kinds of refusal, and both leave the order without new events:
- an invalid payload (a non-positive quantity, a malformed uuid, a datetime
  without a time zone, amounts that do not add up) raises pydantic's
  ValidationError, which says field by field what is wrong;
- a command the order's status forbids raises DomainError.

Money is a float in the payloads, in whole cents: at most two decimal
places, never negative (a unit price is positive), never NaN or infinite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator
from pydantic.alias_generators import to_camel

from pg_eventstore.aggregate import Aggregate, DomainError

PENDING = "pending"
PLACED = "placed"
SHIPPED = "shipped"
DELIVERED = "delivered"
CANCELLED = "cancelled"


def cents(amount: float) -> int:
    """An amount of money as whole cents."""
    return round(amount * 100)


def _whole_cents(amount: float) -> float:
    if round(amount, 2) != amount:
        raise ValueError("an amount of money has at most two decimal places")
    return amount


Money = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_whole_cents)]
Price = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_whole_cents)]
Text = Annotated[str, Field(min_length=1)]


class Payload(BaseModel):
    """A stored payload: camelCase keys, unknown keys refused, validated again when passed as an instance."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
        revalidate_instances="always",
    )

    def to_payload(self) -> dict[str, Any]:
        """The JSON object to store: camelCase keys, uuids and datetimes as ISO text, unset options left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LineItem(Payload):
    product_id: Text
    sku: Text
    name: Text
    quantity: Annotated[StrictInt, Field(gt=0)]
    unit_price: Price


class ShippingAddress(Payload):
    line1: Text
    city: Text
    country: Text
    postal_code: Text


def line_total(line_items: Sequence[LineItem]) -> float:
    """The sum of quantity x unit price over the line items, rounded to cents."""
    return sum(cents(item.unit_price) * item.quantity for item in line_items) / 100


class OrderPlaced(Payload):
    order_number: Text
    customer_id: UUID
    line_items: list[LineItem] = Field(min_length=1)
    shipping_address: ShippingAddress
    subtotal: Money
    shipping_cost: Money
    total: Money

    @model_validator(mode="after")
    def _amounts_add_up(self) -> Self:
        if cents(self.subtotal) != cents(line_total(self.line_items)):
            raise ValueError(
                f"subtotal {self.subtotal} is not the sum of the line items ({line_total(self.line_items)})"
            )
        if cents(self.total) != cents(self.subtotal) + cents(self.shipping_cost):
            raise ValueError(f"total {self.total} is not subtotal + shipping cost")
        return self


class OrderShipped(Payload):
    tracking_number: Text
    carrier: Text
    estimated_delivery: AwareDatetime | None = None


class OrderDelivered(Payload):
    delivered_at: AwareDatetime
    signed_by: str | None = None


class OrderCancelled(Payload):
    reason: Text
    cancelled_by: UUID
    refund_amount: Money | None = None


PayloadInput = Mapping[str, Any]

# The status each event leaves an order in: all that the commands' rules need.
# The order's full state (number, items, totals, times) is the SQL fold's.
_STATUS_AFTER = {
    "OrderPlaced": PLACED,
    "OrderShipped": SHIPPED,
    "OrderDelivered": DELIVERED,
    "OrderCancelled": CANCELLED,
}


class Order(Aggregate):
    """An order: placed, then shipped, then delivered; cancelled while placed or shipped.

    state is the SQL fold's state (orders.order_fold) as loaded; between a
    command and the next load only its status follows the recorded events.
    """

    aggregate_type = "Order"
    # The registered initial state (orders.sql); test_orders.py checks they agree.
    initial_state = MappingProxyType(
        {
            "status": PENDING,
            "orderNumber": None,
            "customerId": None,
            "lineItems": [],
            "shippingAddress": None,
            "subtotal": 0,
            "shippingCost": 0,
            "total": 0,
            "placedAt": None,
            "shippedAt": None,
            "deliveredAt": None,
            "cancelledAt": None,
        }
    )

    @property
    def status(self) -> str:
        return str(self.state.get("status", PENDING))

    def _require(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise DomainError(f"cannot {what} order {self.id}: it is {self.status}")

    def place(self, details: OrderPlaced | PayloadInput, metadata: Mapping[str, Any] | None = None) -> None:
        """Place a new order. Only a pending order (one with no events) can be placed."""
        self._require(self.status == PENDING, "place")
        self.record("OrderPlaced", OrderPlaced.model_validate(_plain(details)).to_payload(), metadata)

    def ship(self, details: OrderShipped | PayloadInput, metadata: Mapping[str, Any] | None = None) -> None:
        """Hand a placed order to a carrier."""
        self._require(self.status == PLACED, "ship")
        self.record("OrderShipped", OrderShipped.model_validate(_plain(details)).to_payload(), metadata)

    def deliver(self, details: OrderDelivered | PayloadInput, metadata: Mapping[str, Any] | None = None) -> None:
        """Confirm the delivery of a shipped order."""
        self._require(self.status == SHIPPED, "deliver")
        self.record("OrderDelivered", OrderDelivered.model_validate(_plain(details)).to_payload(), metadata)

    def cancel(self, details: OrderCancelled | PayloadInput, metadata: Mapping[str, Any] | None = None) -> None:
        """Cancel a placed or shipped order.

        Not a delivered or cancelled one (the seed's rule), and not a pending
        one either: a pending order has no events, so there is nothing to
        cancel, and a cancellation would create an order that was never placed.
        """
        self._require(self.status in (PLACED, SHIPPED), "cancel")
        self.record("OrderCancelled", OrderCancelled.model_validate(_plain(details)).to_payload(), metadata)

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        status = _STATUS_AFTER.get(event_type)
        if status is not None:
            self.state["status"] = status


def _plain(details: Payload | PayloadInput) -> Payload | dict[str, Any]:
    """What model_validate takes: a model instance (validated again) or a dict."""
    return details if isinstance(details, Payload) else dict(details)

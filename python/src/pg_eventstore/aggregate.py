"""Aggregates in Python: commands that check rules and record events, and repositories that save them.

The fold lives once, in SQL: a repository loads an aggregate's state and
version through eventstore.load_aggregate, so Python never replays history.
An Aggregate subclass implements commands (check a rule on `state`, then
`record` an event) and `apply`, which updates `state` for what the next
command's rules need (e.g. the status) -- not a second copy of the fold.

    class Order(Aggregate):
        aggregate_type = "Order"

        def ship(self, carrier: str) -> None:
            if self.state.get("status") != "placed":
                raise DomainError("only a placed order can be shipped")
            self.record("OrderShipped", {"carrier": carrier})

        def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
            if event_type == "OrderShipped":
                self.state["status"] = "shipped"

    orders = AggregateRepository(EventStore(pool), Order)
    orders.run_command(order_id, lambda order: order.ship("DHL"))
"""

from pg_eventstore.async_repository import AsyncAggregateRepository
from pg_eventstore.domain import Aggregate, DomainError
from pg_eventstore.models import NO_STREAM
from pg_eventstore.repository import AggregateRepository

__all__ = ["NO_STREAM", "Aggregate", "AggregateRepository", "AsyncAggregateRepository", "DomainError"]

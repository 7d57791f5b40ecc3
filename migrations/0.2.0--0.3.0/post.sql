-- pg_eventstore 0.2.0 -> 0.3.0, the hand-written part that runs AFTER the code.

-- Internal functions carry a leading underscore now; the code created them
-- under their new names, and nothing calls the old ones any more (the
-- triggers and the status view were re-created by the code).
DROP FUNCTION
eventstore.next_transaction_id(),
eventstore.checked_feed_key_offset(),
eventstore.validate_append(text, uuid, integer, jsonb),
eventstore.stored_retry(text, uuid, jsonb),
eventstore.check_page_size(integer),
eventstore.feed_page(bigint, bigint, bigint, integer, text[], text[]),
eventstore.qualified_name(regprocedure),
eventstore.registered_projection(text),
eventstore.projection_wrapper(text, text),
eventstore.refresh_inline_projections(),
eventstore.create_projection_wrappers(text, regprocedure, regprocedure),
eventstore.validate_event_types(text[]),
eventstore.change_projection_state(text, text[], text),
eventstore.projection_batch(eventstore.projections, bigint, integer),
eventstore.apply_projection_batch(eventstore.projections, eventstore.domain_events[]),
eventstore.fold_identity(regprocedure, jsonb),
eventstore.registered_type(text),
eventstore.hand_to_owner_of(regprocedure, regprocedure, text),
eventstore.owner_guard(regprocedure),
eventstore.check_may_register(regprocedure, text),
eventstore.fold_state(eventstore.aggregate_types, uuid, integer),
eventstore.typed_stream(text, uuid),
eventstore.save_snapshot(eventstore.aggregate_types, uuid, integer),
eventstore.take_automatic_snapshot(text, uuid, integer),
eventstore.refuse_event_change(),
eventstore.notify_append();

-- Inline projections run from a statement trigger now (0.2.0: a row trigger):
-- regenerate it. Dropped first: an extension script may not replace a
-- function the extension does not own (the generated one is released again).
DROP TRIGGER IF EXISTS domain_events_inline_projections ON eventstore.domain_events;
DROP FUNCTION IF EXISTS eventstore.apply_inline_projections();
DO $refresh$
BEGIN
    PERFORM eventstore._refresh_inline_projections();
END
$refresh$;

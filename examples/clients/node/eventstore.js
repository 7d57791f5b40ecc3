// A small pg_eventstore client for Node.js over npm's `pg`. Every function is one
// call of the SQL API (docs/sql-reference.md); docs/other-languages.md explains
// the choices made here and quotes this file.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const CHANNEL = 'eventstore_events';

// Expected versions. -1: the aggregate must not exist yet; N >= 0: it must be at
// version N. "No check" is a value of its own: in SQL it is NULL, and a JavaScript
// null or undefined that reached the database would silently turn the check off.
export const NO_STREAM = -1;
export const ANY_VERSION = Symbol('ANY_VERSION');

// A timestamptz as PostgreSQL prints it: a JavaScript Date keeps milliseconds
// only, and an event's occurred_at has microseconds.
const EXACT_TIMES = {
  getTypeParser: (oid, format) =>
    oid === pg.types.builtins.TIMESTAMPTZ ? (text) => text : pg.types.getTypeParser(oid, format),
};

const EVENT_COLUMNS = `id, event_id, aggregate_type, aggregate_id, event_type, event_version,
  payload, metadata, occurred_at`;

const APPEND = `SELECT ${EVENT_COLUMNS}, (feed_key, id)::eventstore.feed_position::text AS feed_position
FROM eventstore.append_events($1, $2, $3, $4::jsonb)`;

const READ_ALL = `SELECT ${EVENT_COLUMNS}, feed_position::text AS feed_position
FROM eventstore.read_all($1::text, $2)`;

// A conflict (SQLSTATE ES001): the aggregate is not at the expected version.
export class ConcurrencyError extends Error {
  constructor(cause) {
    super(cause.message, { cause });
    this.name = 'ConcurrencyError';
    // errors.md: the DETAIL always starts "stream <id>, expected version <n>, actual version <m>".
    const detail = /expected version (-?\d+), actual version (-?\d+)/.exec(cause.detail ?? '');
    this.expectedVersion = detail ? Number(detail[1]) : null;
    this.actualVersion = detail ? Number(detail[2]) : null;
  }
}

// An event to append. The event_id is chosen here, before the first try, so that
// a retry after an unknown outcome (a lost connection during COMMIT) resends the
// same ids and the database recognises it.
export function newEvent(eventType, payload, metadata = {}) {
  return { event_type: eventType, payload, metadata, event_id: randomUUID() };
}

function checkExpectedVersion(expectedVersion) {
  if (expectedVersion === ANY_VERSION) return null;
  if (Number.isInteger(expectedVersion) && expectedVersion >= NO_STREAM) return expectedVersion;
  throw new TypeError(
    `expected version must be an integer >= -1 or ANY_VERSION, got ${String(expectedVersion)}`,
  );
}

function toEvent(row) {
  return {
    id: row.id,
    eventId: row.event_id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    eventType: row.event_type,
    version: row.event_version,
    payload: row.payload,
    metadata: row.metadata,
    occurredAt: row.occurred_at,
    feedPosition: row.feed_position,
  };
}

// Appends events to one aggregate, atomically; returns the stored events, each
// with its feed position. A retry of a stored call returns the stored events.
export async function appendEvents(client, aggregateType, aggregateId, expectedVersion, events) {
  const version = checkExpectedVersion(expectedVersion);
  try {
    const { rows } = await client.query({
      text: APPEND,
      values: [aggregateType, aggregateId, version, JSON.stringify(events)],
      types: EXACT_TIMES,
    });
    return rows.map(toEvent);
  } catch (error) {
    if (error.code === 'ES001') throw new ConcurrencyError(error);
    throw error;
  }
}

// The current state and version of an aggregate, or null when it does not exist.
export async function loadAggregate(client, aggregateType, aggregateId) {
  const { rows } = await client.query(
    'SELECT state, version FROM eventstore.load_aggregate($1, $2)',
    [aggregateType, aggregateId],
  );
  return rows[0] ?? null;
}

// The state after the aggregate's last event with occurred_at <= asOf, or null.
// asOf: a timestamptz in PostgreSQL's text form (as events carry it), or a Date.
export async function stateAt(client, aggregateType, aggregateId, asOf) {
  const { rows } = await client.query(
    'SELECT state, version FROM eventstore.aggregate_state_at($1, $2, $3::timestamptz)',
    [aggregateType, aggregateId, asOf],
  );
  return rows[0] ?? null;
}

// The state right after the aggregate's event `version`, or null.
export async function stateAtVersion(client, aggregateType, aggregateId, version) {
  const { rows } = await client.query(
    'SELECT state, version FROM eventstore.aggregate_state_at_version($1, $2, $3)',
    [aggregateType, aggregateId, version],
  );
  return rows[0] ?? null;
}

// One page of the global feed after `after` (a position's text form, or null for
// the start).
export async function readAll(client, after = null, maxCount = 1000) {
  const { rows } = await client.query({ text: READ_ALL, values: [after, maxCount], types: EXACT_TIMES });
  return rows.map(toEvent);
}

// A feed position's text form, "(feed_key,id)", as a pair of BigInts: feed keys
// are bigint and may exceed Number.MAX_SAFE_INTEGER.
export function parsePosition(text) {
  const match = /^\((-?\d+),(-?\d+)\)$/.exec(text);
  if (!match) throw new TypeError(`not a feed position: ${text}`);
  return [BigInt(match[1]), BigInt(match[2])];
}

// Orders two positions as the feed does: -1, 0 or 1. Never compare the text forms
// as strings: "(10,5)" < "(9,7)" as strings.
export function comparePositions(a, b) {
  const [keyA, idA] = parsePosition(a);
  const [keyB, idB] = parsePosition(b);
  if (keyA !== keyB) return keyA < keyB ? -1 : 1;
  if (idA !== idB) return idA < idB ? -1 : 1;
  return 0;
}

// Every event of the feed after `after`, then new ones as they become readable,
// until `signal` aborts. `client` is a connection of its own (it LISTENs). Store
// each event's feedPosition once it is processed, and pass it as `after` to resume.
// After activity (a notification, or a read that found events) it reads again
// after recheckDelayMs; when idle it reads at least every pollIntervalMs. Both
// as the contract in docs/other-languages.md asks.
export async function* followFeed(
  client,
  { after = null, pageSize = 500, pollIntervalMs = 1000, recheckDelayMs = 50, signal } = {},
) {
  let notified = false;
  let wake = () => {};
  const onNotification = (message) => {
    if (message.channel !== CHANNEL) return;
    notified = true;
    wake();
  };
  // Resolves true when a notification arrives, false after `ms` or on abort.
  const wakeUp = (ms) =>
    new Promise((resolve) => {
      const done = (woken) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        wake = () => {};
        resolve(woken);
      };
      const aborted = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal?.addEventListener('abort', aborted);
      wake = () => done(true);
      if (signal?.aborted) done(false);
    });
  client.on('notification', onNotification);
  // LISTEN before the catch-up read: an append that commits during the read then
  // leaves a notification behind instead of going unnoticed until the next poll.
  await client.query(`LISTEN ${CHANNEL}`);
  let position = after;
  // The catch-up read counts as activity: read once more shortly after it.
  let active = true;
  try {
    while (!signal?.aborted) {
      notified = false;
      const page = await readAll(client, position, pageSize);
      for (const event of page) {
        yield event;
        position = event.feedPosition;
        if (signal?.aborted) return;
      }
      if (page.length === pageSize) continue;
      if (notified) {
        active = true;
        continue;
      }
      // A notification is only a hint: its events may still be behind the fence,
      // and an append that commits while another one notifies sends none. So read
      // again shortly after activity, and poll when idle.
      active = await wakeUp(active || page.length > 0 ? recheckDelayMs : pollIntervalMs);
    }
  } finally {
    client.off('notification', onNotification);
    await client.query(`UNLISTEN ${CHANNEL}`);
  }
}

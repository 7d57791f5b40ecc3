// The Node.js client against a real event store: run by `make test` inside the
// test cluster (PGHOST, PGPORT, PGUSER), or by hand with `node --test` and those set.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';

import {
  ANY_VERSION,
  ConcurrencyError,
  NO_STREAM,
  appendEvents,
  comparePositions,
  followFeed,
  loadAggregate,
  newEvent,
  readAll,
  stateAt,
  stateAtVersion,
} from '../eventstore.js';
import { createTestDatabase, dropTestDatabase } from './database.js';

let database;
let client;

before(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ database });
  await client.connect();
});

after(async () => {
  await client?.end();
  if (database) await dropTestDatabase(database);
});

function placed(orderNumber) {
  return newEvent('OrderPlaced', { orderNumber, customerId: randomUUID(), total: 42.5 });
}

async function eventCount(aggregateId) {
  const { rows } = await client.query('SELECT count(*)::int AS n FROM eventstore.load_events($1)', [aggregateId]);
  return rows[0].n;
}

// The next event from a feed iterator, or a failure after `ms`.
async function nextWithin(iterator, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
  });
  try {
    const { value } = await Promise.race([iterator.next(), timeout]);
    return value;
  } finally {
    clearTimeout(timer);
  }
}

// Whether the iterator yields something within `ms` (the pending next() is returned for later use).
async function yieldsWithin(iterator, ms) {
  const pending = iterator.next();
  const result = await Promise.race([pending.then(() => true), new Promise((r) => setTimeout(r, ms, false))]);
  return { result, pending };
}

describe('appending', () => {
  test('-1 creates the aggregate; the stored rows come back with their feed positions', async () => {
    const id = randomUUID();
    const stored = await appendEvents(client, 'Order', id, NO_STREAM, [placed('N-1')]);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].version, 0);
    assert.equal(stored[0].aggregateId, id);
    assert.deepEqual(stored[0].payload.orderNumber, 'N-1');
    assert.match(stored[0].feedPosition, /^\(\d+,\d+\)$/);
  });

  test('a conflict is ES001: a ConcurrencyError with the actual version, which a reload confirms', async () => {
    const id = randomUUID();
    await appendEvents(client, 'Order', id, NO_STREAM, [placed('N-2')]);
    await appendEvents(client, 'Order', id, 0, [newEvent('OrderShipped', { carrier: 'DHL' })]);

    const error = await appendEvents(client, 'Order', id, 0, [newEvent('OrderCancelled', { reason: 'late' })]).then(
      () => assert.fail('a stale expected version must not append'),
      (e) => e,
    );
    assert.ok(error instanceof ConcurrencyError);
    assert.equal(error.cause.code, 'ES001');
    assert.equal(error.expectedVersion, 0);
    assert.equal(error.actualVersion, 1);

    // Decide again on the reloaded state, then append with its version.
    const current = await loadAggregate(client, 'Order', id);
    assert.equal(current.version, error.actualVersion);
    assert.equal(current.state.status, 'shipped');
    const stored = await appendEvents(client, 'Order', id, current.version, [
      newEvent('OrderDelivered', {}),
    ]);
    assert.equal(stored[0].version, 2);
  });

  test('-1 for an aggregate that exists is ES001 with its version', async () => {
    const id = randomUUID();
    await appendEvents(client, 'Order', id, NO_STREAM, [placed('N-3')]);
    await assert.rejects(appendEvents(client, 'Order', id, NO_STREAM, [placed('N-3b')]), {
      name: 'ConcurrencyError',
      actualVersion: 0,
    });
  });

  test('a retry with the same event ids returns the stored rows and appends nothing', async () => {
    const id = randomUUID();
    const events = [placed('N-4'), newEvent('OrderShipped', { carrier: 'UPS' })];
    const first = await appendEvents(client, 'Order', id, NO_STREAM, events);
    // The same call again, as after a connection lost during COMMIT: -1 is stale by now.
    const retried = await appendEvents(client, 'Order', id, NO_STREAM, events);
    assert.deepEqual(retried, first);
    assert.equal(await eventCount(id), 2);
  });

  test('the same event id with other content is ES005, not a retry', async () => {
    const id = randomUUID();
    const event = placed('N-5');
    await appendEvents(client, 'Order', id, NO_STREAM, [event]);
    await assert.rejects(
      appendEvents(client, 'Order', id, NO_STREAM, [{ ...event, payload: { orderNumber: 'other' } }]),
      { code: 'ES005' },
    );
    assert.equal(await eventCount(id), 1);
  });

  test('the guard refuses a lost expected version instead of appending without a check', async () => {
    const id = randomUUID();
    await appendEvents(client, 'Order', id, NO_STREAM, [placed('N-6')]);
    for (const lost of [undefined, null, '0', 0.5, -2, Number.NaN]) {
      await assert.rejects(appendEvents(client, 'Order', id, lost, [newEvent('OrderShipped', {})]), TypeError);
    }
    assert.equal(await eventCount(id), 1);
    // What the guard prevents: the same stale call with NULL goes through.
    await client.query('SELECT FROM eventstore.append_events($1, $2, $3, $4::jsonb)', [
      'Order',
      id,
      null,
      JSON.stringify([newEvent('OrderShipped', {})]),
    ]);
    assert.equal(await eventCount(id), 2);
    // ANY_VERSION is how to ask for no check on purpose.
    const stored = await appendEvents(client, 'Order', id, ANY_VERSION, [newEvent('OrderDelivered', {})]);
    assert.equal(stored[0].version, 2);
  });
});

describe('state at a time', () => {
  test('an event own occurred_at, passed back as text, finds the state after that event', async () => {
    const id = randomUUID();
    const [placedEvent] = await appendEvents(client, 'Order', id, NO_STREAM, [placed('T-1')]);
    const [shippedEvent] = await appendEvents(client, 'Order', id, 0, [newEvent('OrderShipped', { carrier: 'DHL' })]);
    assert.equal(typeof shippedEvent.occurredAt, 'string');

    const atPlaced = await stateAt(client, 'Order', id, placedEvent.occurredAt);
    assert.equal(atPlaced.version, 0);
    assert.equal(atPlaced.state.status, 'placed');
    const atShipped = await stateAt(client, 'Order', id, shippedEvent.occurredAt);
    assert.equal(atShipped.version, 1);
    assert.equal(atShipped.state.status, 'shipped');
    assert.deepEqual(await stateAtVersion(client, 'Order', id, 0), atPlaced);
  });

  test('the same time as a JavaScript Date loses its microseconds and finds no state', async () => {
    const id = randomUUID();
    const [event] = await appendEvents(client, 'Order', id, NO_STREAM, [placed('T-2')]);
    // What pg returns by default for a timestamptz: a Date, to the millisecond.
    const asDate = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ)(event.occurredAt);
    const fraction = /\.(\d+)/.exec(event.occurredAt)?.[1] ?? '';
    const microseconds = Number(fraction.padEnd(6, '0')) % 1000;
    const { rows } = await client.query('SELECT $1::timestamptz = $2::timestamptz AS kept', [
      asDate,
      event.occurredAt,
    ]);
    assert.ok(microseconds === 0 || !rows[0].kept, 'a Date cannot hold the microseconds');
    // Found only when the time happens to be a whole millisecond (about 1 in 1000).
    const found = await stateAt(client, 'Order', id, asDate);
    assert.equal(found?.version ?? null, rows[0].kept ? 0 : null);
  });
});

describe('the feed', () => {
  test('positions compare as (feed_key, id) pairs, not as strings', () => {
    assert.equal(comparePositions('(9,7)', '(10,5)'), -1);
    assert.ok('(9,7)' > '(10,5)', 'as strings they would sort the other way');
    assert.equal(comparePositions('(10,5)', '(10,12)'), -1);
    assert.equal(comparePositions('(10,12)', '(10,12)'), 0);
    assert.equal(comparePositions('(-1,0)', '(0,0)'), -1);
    assert.equal(comparePositions('(9007199254740993,1)', '(9007199254740992,2)'), 1);
    assert.throws(() => comparePositions('(1, 2)', '(1,2)'), TypeError);
  });

  test('follows from a saved position: the catch-up, then new events woken by NOTIFY', async () => {
    const id = randomUUID();
    const [saved] = await appendEvents(client, 'Order', id, NO_STREAM, [placed('F-1')]);
    const backlog = await appendEvents(client, 'Order', id, 0, [
      newEvent('OrderShipped', { carrier: 'DHL' }),
      newEvent('OrderDelivered', {}),
    ]);

    const listener = new pg.Client({ database });
    await listener.connect();
    const stop = new AbortController();
    // A poll interval longer than the test: only a notification can wake it in time.
    const feed = followFeed(listener, { after: saved.feedPosition, pollIntervalMs: 60_000, signal: stop.signal });
    try {
      const caughtUp = [await nextWithin(feed, 5000), await nextWithin(feed, 5000)];
      assert.deepEqual(
        caughtUp.map((e) => [e.eventId, e.feedPosition]),
        backlog.map((e) => [e.eventId, e.feedPosition]),
        'the feed starts after the saved position, and an append knows its own feed position',
      );
      assert.equal(comparePositions(saved.feedPosition, caughtUp[0].feedPosition), -1);
      assert.equal(comparePositions(caughtUp[0].feedPosition, caughtUp[1].feedPosition), -1);

      const pending = nextWithin(feed, 5000);
      const [late] = await appendEvents(client, 'Order', randomUUID(), NO_STREAM, [placed('F-2')]);
      assert.equal((await pending).eventId, late.eventId);
    } finally {
      stop.abort();
      await feed.return();
      await listener.end();
    }
  });

  test('an append that commits right after the catch-up read wakes the follower (LISTEN came first)', async () => {
    const listener = new pg.Client({ database });
    await listener.connect();
    const [head] = await appendEvents(client, 'Order', randomUUID(), NO_STREAM, [placed('R-0')]);
    // Append from another connection as soon as the follower's first read has returned.
    let late = null;
    const query = listener.query.bind(listener);
    listener.query = async (...args) => {
      const result = await query(...args);
      if (late === null && /read_all/.test(args[0]?.text ?? args[0])) {
        late = appendEvents(client, 'Order', randomUUID(), NO_STREAM, [placed('R-1')]);
        await late;
      }
      return result;
    };
    const stop = new AbortController();
    const feed = followFeed(listener, { after: head.feedPosition, pollIntervalMs: 60_000, signal: stop.signal });
    try {
      const event = await nextWithin(feed, 5000);
      assert.equal(event.eventId, (await late)[0].eventId);
    } finally {
      stop.abort();
      await feed.return();
      await listener.end();
    }
  });

  test('an event held back by the fence arrives at the next poll, without a notification', async () => {
    const listener = new pg.Client({ database });
    const holder = new pg.Client({ database });
    await Promise.all([listener.connect(), holder.connect()]);
    const stop = new AbortController();
    const [head] = await appendEvents(client, 'Order', randomUUID(), NO_STREAM, [placed('P-0')]);
    const feed = followFeed(listener, { after: head.feedPosition, pollIntervalMs: 200, signal: stop.signal });
    try {
      // An older transaction that has appended holds the fence; it rolls back, so nothing notifies.
      await holder.query('BEGIN');
      await appendEvents(holder, 'Order', randomUUID(), NO_STREAM, [placed('P-X')]);
      const [held] = await appendEvents(client, 'Order', randomUUID(), NO_STREAM, [placed('P-1')]);
      const { result, pending } = await yieldsWithin(feed, 1000);
      assert.equal(result, false, 'the event must wait behind the fence');
      await holder.query('ROLLBACK');
      const arrived = await Promise.race([pending, new Promise((_, no) => setTimeout(no, 5000, new Error('no poll')))]);
      assert.equal(arrived.value.eventId, held.eventId);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      stop.abort();
      await feed.return();
      await Promise.all([listener.end(), holder.end()]);
    }
  });

  test('readAll pages through the whole feed in position order', async () => {
    const positions = [];
    for (let page = await readAll(client, null, 7); page.length > 0; page = await readAll(client, positions.at(-1), 7)) {
      positions.push(...page.map((e) => e.feedPosition));
    }
    assert.ok(positions.length > 10);
    const sorted = [...positions].sort(comparePositions);
    assert.deepEqual(positions, sorted);
    assert.equal(new Set(positions).size, positions.length);
  });
});

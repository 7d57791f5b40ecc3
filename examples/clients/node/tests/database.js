// A database of its own for the tests, made in the cluster that PGHOST, PGPORT and
// PGUSER point at, with the event store's install script and the Order example.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';

const ROOT = new URL('../../../../', import.meta.url);

export async function createTestDatabase() {
  const database = `eventstore_node_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ database });
  await client.connect();
  try {
    // Both files are plain SQL: the simple query protocol runs them whole.
    for (const script of ['build/eventstore.sql', 'examples/orders/orders.sql']) {
      await client.query(await readFile(new URL(script, ROOT), 'utf8'));
    }
  } finally {
    await client.end();
  }
  return database;
}

export async function dropTestDatabase(database) {
  const admin = new pg.Client({ database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

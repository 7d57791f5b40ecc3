-- 0.3.0 -> 0.4.0, before the code: state changes and what CREATE OR REPLACE cannot do (see migrations/README.md).

-- Which committing append transactions send the wake-up NOTIFY (sql/code/06_notify.sql).
ALTER TABLE eventstore.settings
ADD COLUMN notify_mode text NOT NULL DEFAULT 'uncontended'
CHECK (notify_mode IN ('uncontended', 'every_append', 'off'));

-- Appenders whose snapshot is older than their registration get a fresh
-- transaction id from a rolled-back insert here (issue 13 item 4).
CREATE UNLOGGED TABLE eventstore.key_floor_probe ();

COMMENT ON TABLE eventstore.key_floor_probe IS
'Internal, always empty: a rolled-back insert here gives an appender a fresh transaction id (see _fresh_transaction_id()).';

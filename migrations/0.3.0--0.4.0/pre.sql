-- 0.3.0 -> 0.4.0, before the code: state changes and what CREATE OR REPLACE cannot do (see migrations/README.md).

-- Which committing append transactions send the wake-up NOTIFY (sql/code/06_notify.sql).
ALTER TABLE eventstore.settings
ADD COLUMN notify_mode text NOT NULL DEFAULT 'uncontended'
CHECK (notify_mode IN ('uncontended', 'every_append', 'off'));

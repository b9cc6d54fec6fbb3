-- The outbox: a task is stored marked unpublished and unmarked once its message is in
-- the queue; a sweeper publishes the ones whose creator died in between. The index holds
-- only marked tasks, so it stays small.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS unpublished boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS tasks_unpublished ON tasks (created_at) WHERE unpublished;

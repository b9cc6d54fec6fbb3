-- The cap on a user's tasks under way counts these; the index holds only unfinished
-- tasks, so it stays small whatever a user's history.
CREATE INDEX IF NOT EXISTS tasks_owner_active ON tasks (owner)
    WHERE status IN ('queued', 'running');

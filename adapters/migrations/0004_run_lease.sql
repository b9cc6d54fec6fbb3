-- A running task's lease: until when the worker that started it holds it. A redelivered
-- message does not start the task again while the lease holds.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS lease_until timestamptz;

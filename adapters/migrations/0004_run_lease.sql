-- A running task's lease: which delivery of its message runs it, until when. Another
-- delivery does not start the task again while the lease holds.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS lease_holder uuid;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS lease_until timestamptz;

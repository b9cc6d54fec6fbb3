CREATE TABLE IF NOT EXISTS users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS tasks (
    id          uuid PRIMARY KEY,
    owner       uuid NOT NULL,
    kind        text NOT NULL,
    spec        jsonb NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    result      jsonb
);

-- The list cursor walks (created_at, id) backwards per owner.
CREATE INDEX IF NOT EXISTS tasks_owner_created ON tasks (owner, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner      uuid NOT NULL,
    key        text NOT NULL,
    task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);

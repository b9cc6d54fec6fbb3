//! PostgreSQL: users and tasks (sqlx, queries checked at run time, migrations embedded and
//! run at start). Status changes are one conditional `UPDATE … WHERE status = ANY(…)`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use codebox_core::Error;
use codebox_core::domain::{
    LeaseCondition, Task, TaskId, TaskKind, TaskResult, TaskSpec, TaskStatus, TaskSummary,
    Transition, TransitionOutcome, User, UserId,
};
use codebox_core::memory::tasks::{decode_cursor, encode_cursor};
use codebox_core::ports::{Created, Page, TaskStore, UserStore};
use codebox_core::time::Timestamp;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Connection failures and server shutdowns are `Unavailable` (503, retry later); a unique
/// violation is a `Conflict`; anything else is a backend error.
fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(format!(
            "already exists ({})",
            d.constraint().unwrap_or("unique")
        )),
        sqlx::Error::Database(d)
            if d.code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            Error::Unavailable("the database".into())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::Unavailable("the database".into())
        }
        _ => Error::Backend(anyhow::Error::new(e).context("postgres")),
    }
}

impl PostgresStore {
    /// Connects and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("running the database migrations: {e}"))?;
        Ok(Self { pool })
    }

    /// The owner's tasks in one of `statuses` (unfinished ones: the partial index of
    /// `0002_active_tasks.sql` answers), no further than `at_most`.
    async fn count_in(
        &self,
        owner: UserId,
        statuses: &[&str],
        at_most: usize,
    ) -> Result<usize, Error> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE owner = $1 \
             AND status = ANY($2) LIMIT $3) AS counted",
        )
        .bind(owner)
        .bind(statuses)
        .bind(i64::try_from(at_most).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// A transition, held (when `running_below` is given) for a queued task whose owner
    /// runs that many tasks or more.
    async fn update(
        &self,
        id: TaskId,
        t: &Transition,
        running_below: Option<usize>,
    ) -> Result<TransitionOutcome, Error> {
        let from: Vec<&str> = t.from.iter().map(|s| s.as_str()).collect();
        let (mode, at, holder) = match t.lease_condition {
            LeaseCondition::Any => ("any", None, None),
            LeaseCondition::FreeAt { holder, at } => ("free", Some(at), Some(holder)),
            LeaseCondition::HeldBy(holder) => ("held", None, Some(holder)),
        };
        let row = sqlx::query(&format!(
            "UPDATE tasks SET status = $2, \
               started_at = COALESCE($3, started_at, $12), \
               finished_at = COALESCE($4, finished_at), \
               result = COALESCE($5, result), \
               lease_holder = COALESCE($7, lease_holder), \
               lease_until = COALESCE($8, lease_until) \
             WHERE id = $1 AND status = ANY($6) AND CASE $9::text \
               WHEN 'free' THEN status <> 'running' OR lease_until IS NULL \
                 OR lease_until < $10::timestamptz OR lease_holder = $11::uuid \
               WHEN 'held' THEN COALESCE(lease_holder = $11::uuid, false) \
               ELSE true END \
               AND ($13::text IS NULL OR kind = $13::text) \
               AND ($14::bigint IS NULL OR status <> 'queued' OR (SELECT count(*) FROM \
                 (SELECT 1 FROM tasks r WHERE r.owner = tasks.owner \
                  AND r.status = 'running' LIMIT $14) AS counted) < $14) \
             RETURNING {SUMMARY_COLUMNS}"
        ))
        .bind(id)
        .bind(t.to.as_str())
        .bind(t.started_at)
        .bind(t.finished_at)
        .bind(t.result.as_ref().map(Json))
        .bind(&from)
        .bind(t.lease.map(|l| l.holder))
        .bind(t.lease.map(|l| l.until))
        .bind(mode)
        .bind(at)
        .bind(holder)
        .bind(t.first_started_at)
        .bind(t.kind.map(TaskKind::as_str))
        .bind(running_below.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = row {
            return Ok(TransitionOutcome::Applied(summary_of(&row)?));
        }
        match TaskStore::summary(self, id).await? {
            Some(task) => Ok(TransitionOutcome::Rejected(task)),
            None => Err(Error::NotFound(format!("task {id} not found"))),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn task_of(row: &PgRow) -> Result<Task, Error> {
    let get = |e: sqlx::Error| Error::Backend(anyhow::Error::new(e).context("reading a task row"));
    let status: String = row.try_get("status").map_err(get)?;
    let status = TaskStatus::parse(&status).ok_or_else(|| {
        Error::Backend(anyhow::anyhow!("unknown status {status:?} in the database"))
    })?;
    let Json(spec): Json<TaskSpec> = row.try_get("spec").map_err(get)?;
    let result: Option<Json<TaskResult>> = row.try_get("result").map_err(get)?;
    Ok(Task {
        id: row.try_get("id").map_err(get)?,
        owner: row.try_get("owner").map_err(get)?,
        spec,
        status,
        created_at: row.try_get("created_at").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        finished_at: row.try_get("finished_at").map_err(get)?,
        result: result.map(|Json(r)| r),
    })
}

/// The columns [`summary_of`] reads.
const SUMMARY_COLUMNS: &str = "id, owner, kind, status, created_at, started_at, finished_at";

fn summary_of(row: &PgRow) -> Result<TaskSummary, Error> {
    let get = |e: sqlx::Error| Error::Backend(anyhow::Error::new(e).context("a task row"));
    let status: String = row.try_get("status").map_err(get)?;
    let kind: String = row.try_get("kind").map_err(get)?;
    Ok(TaskSummary {
        id: row.try_get("id").map_err(get)?,
        owner: row.try_get("owner").map_err(get)?,
        kind: match kind.as_str() {
            "image" => TaskKind::Image,
            _ => TaskKind::Code,
        },
        status: TaskStatus::parse(&status).ok_or_else(|| {
            Error::Backend(anyhow::anyhow!("unknown status {status:?} in the database"))
        })?,
        created_at: row.try_get("created_at").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        finished_at: row.try_get("finished_at").map_err(get)?,
    })
}

async fn task_in(tx: &mut Transaction<'_, Postgres>, id: TaskId) -> Result<Option<Task>, Error> {
    sqlx::query("SELECT * FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .as_ref()
        .map(task_of)
        .transpose()
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create(&self, user: &User) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict(format!("username {:?} is taken", user.username)),
            other => other,
        })?;
        Ok(())
    }

    async fn get_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, Error> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_of).transpose()
    }
}

fn user_of(row: &PgRow) -> Result<User, Error> {
    let get = |e: sqlx::Error| Error::Backend(anyhow::Error::new(e).context("reading a user row"));
    Ok(User {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

/// Stores a new task, unpublished (the outbox's mark).
/// Inserts `task` marked unpublished; with `active_below`, only while its owner has fewer
/// tasks than that queued or running, counted in the same statement. Whether it inserted.
async fn insert_task<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    task: &Task,
    active_below: Option<usize>,
) -> Result<bool, Error> {
    const COLUMNS: &str = "tasks (id, owner, kind, spec, status, created_at, started_at, finished_at, result, unpublished)";
    let sql = match active_below {
        None => format!("INSERT INTO {COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)"),
        Some(_) => format!(
            "INSERT INTO {COLUMNS} SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, true \
             WHERE (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE owner = $2 \
                    AND status IN ('queued', 'running') LIMIT $10::bigint) AS active) < $10::bigint"
        ),
    };
    let query = sqlx::query(&sql)
        .bind(task.id)
        .bind(task.owner)
        .bind(task.kind().as_str())
        .bind(Json(&task.spec))
        .bind(task.status.as_str())
        .bind(task.created_at)
        .bind(task.started_at)
        .bind(task.finished_at)
        .bind(task.result.as_ref().map(Json));
    let query = match active_below {
        Some(n) => query.bind(i64::try_from(n).unwrap_or(i64::MAX)),
        None => query,
    };
    let done = query.execute(executor).await.map_err(db)?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl TaskStore for PostgresStore {
    /// Without an idempotency key, one statement: the insert carries the owner's active
    /// count as its condition. With one, the count and then the key's transaction.
    #[tracing::instrument(level = "debug", name = "store.create_within", skip_all)]
    async fn create_within(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
        active_below: usize,
    ) -> Result<Created, Error> {
        if idempotency_key.is_some() {
            return codebox_core::ports::count_then_create(
                self,
                task,
                idempotency_key,
                key_since,
                active_below,
            )
            .await;
        }
        Ok(
            match insert_task(&self.pool, task, Some(active_below)).await? {
                true => Created::New,
                false => Created::Held,
            },
        )
    }

    #[tracing::instrument(level = "debug", name = "store.create", skip_all)]
    async fn create(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
    ) -> Result<Created, Error> {
        let Some(key) = idempotency_key else {
            // One statement, atomic on its own: no transaction's two round trips.
            insert_task(&self.pool, task, None).await?;
            return Ok(Created::New);
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let existing: Option<(TaskId, DateTime<Utc>)> = sqlx::query_as(
            "SELECT task_id, created_at FROM idempotency_keys WHERE owner = $1 AND key = $2 FOR UPDATE",
        )
        .bind(task.owner)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        match existing {
            Some((first, at)) if at >= key_since => {
                if let Some(t) = task_in(&mut tx, first).await? {
                    tx.commit().await.map_err(db)?;
                    return Ok(Created::Existing(Box::new(t)));
                }
            }
            Some(_) => {
                sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2")
                    .bind(task.owner)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            None => {}
        }
        insert_task(&mut *tx, task, None).await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (owner, key, task_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(task.owner)
        .bind(key)
        .bind(task.id)
        .bind(task.created_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return match db(e) {
                // Another request with the same key won the race: its task stands.
                Error::Conflict(_) => {
                    drop(tx);
                    let first: Option<(TaskId,)> = sqlx::query_as(
                        "SELECT task_id FROM idempotency_keys WHERE owner = $1 AND key = $2",
                    )
                    .bind(task.owner)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                    match first {
                        Some((id,)) => match TaskStore::get(self, id).await? {
                            Some(t) => Ok(Created::Existing(Box::new(t))),
                            None => Err(Error::Conflict("idempotency key in use".into())),
                        },
                        None => Err(Error::Conflict("idempotency key in use".into())),
                    }
                }
                other => Err(other),
            };
        }
        tx.commit().await.map_err(db)?;
        Ok(Created::New)
    }

    #[tracing::instrument(level = "debug", name = "store.get", skip_all)]
    async fn get(&self, id: TaskId) -> Result<Option<Task>, Error> {
        sqlx::query("SELECT * FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(task_of)
            .transpose()
    }

    #[tracing::instrument(level = "debug", name = "store.summary", skip_all)]
    async fn summary(&self, id: TaskId) -> Result<Option<TaskSummary>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM tasks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(summary_of).transpose()
    }

    #[tracing::instrument(level = "debug", name = "store.count_active", skip_all)]
    async fn count_active(&self, owner: UserId, at_most: usize) -> Result<usize, Error> {
        self.count_in(owner, &["queued", "running"], at_most).await
    }

    async fn count_running(&self, owner: UserId, at_most: usize) -> Result<usize, Error> {
        self.count_in(owner, &["running"], at_most).await
    }

    /// One statement: the start's update carries the owner's running count as its
    /// condition.
    #[tracing::instrument(level = "debug", name = "store.start_within", skip_all)]
    async fn start_within(
        &self,
        id: TaskId,
        start: &Transition,
        running_below: usize,
    ) -> Result<TransitionOutcome, Error> {
        self.update(id, start, Some(running_below)).await
    }

    async fn list_by_owner(
        &self,
        owner: UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, Error> {
        let after = cursor.map(decode_cursor).transpose()?;
        let (after_at, after_id) = match after {
            Some((ms, id)) => (
                Some(Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
                    Error::Invalid("cursor is not one this service gave out".into())
                })?),
                Some(id),
            ),
            None => (None, None),
        };
        // Summaries only: a page never reads a spec or a result.
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM tasks WHERE owner = $1 \
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(owner)
        .bind(after_at)
        .bind(after_id)
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let more = rows.len() > limit;
        let items = rows
            .iter()
            .take(limit)
            .map(summary_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (more, items.last()) {
            (true, Some(t)) => Some(encode_cursor(t.created_at.timestamp_millis(), t.id)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(level = "debug", name = "store.mark_published", skip_all)]
    async fn mark_published(&self, id: TaskId) -> Result<(), Error> {
        sqlx::query("UPDATE tasks SET unpublished = false WHERE id = $1 AND unpublished")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE unpublished AND created_at < $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(task_of).collect()
    }

    #[tracing::instrument(level = "debug", name = "store.transition", skip_all)]
    async fn transition(&self, id: TaskId, t: &Transition) -> Result<TransitionOutcome, Error> {
        self.update(id, t, None).await
    }

    async fn delete(&self, id: TaskId) -> Result<(), Error> {
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

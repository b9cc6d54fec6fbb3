//! DynamoDB: users (the username is the key, so a conditional put makes it unique; a GSI
//! finds them by id), sessions and idempotency keys with a TTL attribute (expiry is also
//! checked on read: TTL deletion is lazy), and tasks with a GSI on owner + a sortable
//! `<created ms>#<id>` key for the list cursor. A status change is one conditional
//! `UpdateItem … IF status IN (…)`. A task's spec or result bigger than [`SPILL_BYTES`]
//! lives in the blob store and the item keeps its key.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use chrono::{TimeZone, Utc};
use codebox_core::Error;
use codebox_core::domain::{
    LeaseCondition, Session, Task, TaskId, TaskKind, TaskResult, TaskSpec, TaskStatus, TaskSummary,
    Transition, TransitionOutcome, User, UserId,
};
use codebox_core::memory::tasks::{decode_cursor, encode_cursor};
use codebox_core::ports::{
    BlobStore, Created, Page, RateDecision, RateLimiter, SessionStore, TaskStore, UserStore,
    window_of,
};
use codebox_core::time::{self, Timestamp};

use super::{SPILL_BYTES, sdk_error};

/// The four tables (names from `USERS_TABLE`, `SESSIONS_TABLE`, `TASKS_TABLE`,
/// `IDEMPOTENCY_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    pub users: String,
    pub sessions: String,
    pub tasks: String,
    pub idempotency: String,
}

/// Index names, as `localstack/` and `infra/` create them.
pub const USERS_BY_ID: &str = "by-id";
pub const TASKS_BY_OWNER: &str = "by-owner";
/// The outbox: a sparse index of the tasks whose `outbox` attribute is set (stored, not
/// yet known to be queued), by creation time.
pub const TASKS_OUTBOX: &str = "by-outbox";
const OUTBOX_PENDING: &str = "pending";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: DynamoTables,
    /// Where specs and results too big for an item go.
    spill: Option<Arc<dyn BlobStore>>,
    /// How long a task is kept: its item carries `expires_at_epoch` (the table's TTL)
    /// and reads treat it as gone from then on, a day before its blobs expire.
    retention: Option<chrono::Duration>,
}

/// A task's item expires this long before the blob store's lifecycle deletes its blobs
/// (both count from the task's creation), so a task that can be read has all its blobs.
pub const EXPIRY_MARGIN: chrono::Duration = chrono::Duration::days(1);

const WHAT: &str = "the database";

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, Error> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::Backend(anyhow::anyhow!(
            "item attribute {name} is missing or not a string"
        ))),
    }
}

fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn opt_n(item: &Item, name: &str) -> Result<Option<i64>, Error> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            Error::Backend(anyhow::anyhow!("item attribute {name} is not an integer"))
        }),
        _ => Ok(None),
    }
}

fn ms(ts: &Timestamp) -> i64 {
    ts.timestamp_millis()
}

fn from_ms(v: i64) -> Result<Timestamp, Error> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| Error::Backend(anyhow::anyhow!("timestamp {v} out of range")))
}

fn uuid_of(item: &Item, name: &str) -> Result<uuid::Uuid, Error> {
    get_s(item, name)?
        .parse()
        .map_err(|_| Error::Backend(anyhow::anyhow!("item attribute {name} is not a uuid")))
}

/// The GSI sort key: fixed-width milliseconds, then the id, so that string order is
/// (created_at, id) order.
fn list_key(created_ms: i64, id: TaskId) -> String {
    format!("{:015}#{id}", created_ms.max(0))
}

fn kind_str(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Code => "code",
        TaskKind::Image => "image",
    }
}

fn summary_of(item: &Item) -> Result<TaskSummary, Error> {
    let status = get_s(item, "status")?;
    let kind = match get_s(item, "kind")? {
        "code" => TaskKind::Code,
        "image" => TaskKind::Image,
        other => return Err(Error::Backend(anyhow::anyhow!("unknown kind {other:?}"))),
    };
    let created_ms = opt_n(item, "created_at_ms")?
        .ok_or_else(|| Error::Backend(anyhow::anyhow!("a task item has no created_at_ms")))?;
    Ok(TaskSummary {
        id: uuid_of(item, "id")?,
        owner: uuid_of(item, "owner")?,
        kind,
        status: TaskStatus::parse(status)
            .ok_or_else(|| Error::Backend(anyhow::anyhow!("unknown status {status:?}")))?,
        created_at: from_ms(created_ms)?,
        started_at: opt_n(item, "started_at_ms")?.map(from_ms).transpose()?,
        finished_at: opt_n(item, "finished_at_ms")?.map(from_ms).transpose()?,
    })
}

/// Whether a task item is past its retention (TTL deletion is lazy: it may still be read).
fn expired(item: &Item) -> bool {
    matches!(opt_n(item, "expires_at_epoch"), Ok(Some(at)) if at <= Utc::now().timestamp())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Backend(e.into()))
}

impl DynamoStore {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        tables: DynamoTables,
        spill: Option<Arc<dyn BlobStore>>,
    ) -> Self {
        Self {
            client: Client::new(sdk),
            tables,
            spill,
            retention: None,
        }
    }

    /// A count-only query of the owner's index, filtered on `statuses`: no item is
    /// returned and no spilled value read.
    async fn count_of(
        &self,
        owner: UserId,
        statuses: &[TaskStatus],
        at_most: usize,
    ) -> Result<usize, Error> {
        let names: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
        let mut count = 0usize;
        let mut start: Option<Item> = None;
        for _ in 0..256 {
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.tasks)
                .index_name(TASKS_BY_OWNER)
                .key_condition_expression("#o = :o")
                .filter_expression(format!("#s IN ({})", names.join(", ")))
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":o", s(owner.to_string()));
            for (name, status) in names.iter().zip(statuses) {
                query = query.expression_attribute_values(name, s(status.as_str()));
            }
            let out = query
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(WHAT, e))?;
            count += usize::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if count >= at_most || start.is_none() {
                break;
            }
        }
        Ok(count.min(at_most))
    }

    /// Tasks are kept `days` days: the item expires `EXPIRY_MARGIN` before the blobs,
    /// which the bucket's lifecycle deletes after `days` days. `None`: kept for ever.
    pub fn with_retention(mut self, days: Option<u32>) -> Self {
        self.retention = days.map(|d| chrono::Duration::days(i64::from(d)) - EXPIRY_MARGIN);
        self
    }

    /// A JSON value as an attribute, or a reference to a blob when it is too big.
    async fn store_json(
        &self,
        value: String,
        key: impl FnOnce() -> String,
    ) -> Result<(&'static str, AttributeValue, Option<String>), Error> {
        if value.len() <= SPILL_BYTES {
            return Ok(("inline", s(value), None));
        }
        let Some(spill) = &self.spill else {
            return Err(Error::TooLarge(format!(
                "a value of {} bytes does not fit a DynamoDB item",
                value.len()
            )));
        };
        let key = key();
        spill.put(&key, value.into_bytes()).await?;
        Ok(("ref", s(key.clone()), Some(key)))
    }

    async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        item: &Item,
        inline: &str,
        reference: &str,
    ) -> Result<Option<T>, Error> {
        let text = if let Some(v) = opt_s(item, inline) {
            v.as_bytes().to_vec()
        } else if let Some(key) = opt_s(item, reference) {
            let spill = self.spill.as_ref().ok_or_else(|| {
                Error::Backend(anyhow::anyhow!("{reference} is set but no blob store is"))
            })?;
            // Its blob expired (or was deleted): the task is gone, not broken.
            spill.get(key).await?.ok_or_else(|| {
                Error::Gone(format!(
                    "this task's stored {inline} has expired (blob {key} is gone)"
                ))
            })?
        } else {
            return Ok(None);
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| Error::Backend(anyhow::anyhow!("a stored {inline} does not decode: {e}")))
    }

    async fn task_of(&self, item: &Item) -> Result<Task, Error> {
        let summary = summary_of(item)?;
        let spec: TaskSpec = self
            .load_json(item, "spec", "spec_ref")
            .await?
            .ok_or_else(|| Error::Backend(anyhow::anyhow!("a task item has no spec")))?;
        Ok(Task {
            id: summary.id,
            owner: summary.owner,
            spec,
            status: summary.status,
            created_at: summary.created_at,
            started_at: summary.started_at,
            finished_at: summary.finished_at,
            result: self.load_json(item, "result", "result_ref").await?,
        })
    }

    /// One item by its key, read consistently (right after a write it is there).
    async fn item(&self, table: &str, key: &str, value: &str) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(key, s(value))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(out.item)
    }

    /// The task's item, unless it is past its retention.
    async fn task_item(&self, id: TaskId) -> Result<Option<Item>, Error> {
        Ok(self
            .item(&self.tables.tasks, "id", &id.to_string())
            .await?
            .filter(|item| !expired(item)))
    }

    async fn forget_blobs(&self, keys: impl IntoIterator<Item = String>) {
        if let Some(spill) = &self.spill {
            for key in keys {
                if let Err(e) = spill.delete(&key).await {
                    tracing::warn!(key, error = %e, "could not delete a spilled value");
                }
            }
        }
    }

    /// Whether the stored task refers to these blobs of a write of ours (so that write
    /// went through, e.g. before an SDK retry). False when there are none to tell by.
    async fn holds_blobs(&self, id: TaskId, blobs: &[String]) -> Result<bool, Error> {
        let Some(first) = blobs.first() else {
            return Ok(false);
        };
        let item = self.task_item(id).await?;
        Ok(item.is_some_and(|i| {
            opt_s(&i, "spec_ref") == Some(first.as_str())
                || opt_s(&i, "result_ref") == Some(first.as_str())
        }))
    }

    /// The item of a new task, and the blobs it refers to.
    async fn new_task_item(
        &self,
        task: &Task,
        owner_key: Option<&str>,
    ) -> Result<(Item, Vec<String>), Error> {
        let mut blobs = Vec::new();
        let mut item = Item::from([
            ("id".to_owned(), s(task.id.to_string())),
            ("owner".to_owned(), s(task.owner.to_string())),
            ("status".to_owned(), s(task.status.as_str())),
            ("kind".to_owned(), s(kind_str(task.kind()))),
            ("created_at_ms".to_owned(), n(ms(&task.created_at))),
            (
                "list_key".to_owned(),
                s(list_key(ms(&task.created_at), task.id)),
            ),
        ]);
        item.insert("outbox".into(), s(OUTBOX_PENDING));
        if let Some(keep) = self.retention {
            item.insert(
                "expires_at_epoch".into(),
                n((task.created_at + keep).timestamp()),
            );
        }
        let (how, value, blob) = self
            .store_json(json(&task.spec)?, || {
                format!("spill/tasks/{}/spec-{}.json", task.id, uuid::Uuid::new_v4())
            })
            .await?;
        item.insert(
            if how == "inline" { "spec" } else { "spec_ref" }.into(),
            value,
        );
        blobs.extend(blob);
        if let Some(result) = &task.result {
            let (how, value, blob) = self
                .store_json(json(result)?, || {
                    format!(
                        "spill/tasks/{}/result-{}.json",
                        task.id,
                        uuid::Uuid::new_v4()
                    )
                })
                .await?;
            item.insert(
                if how == "inline" {
                    "result"
                } else {
                    "result_ref"
                }
                .into(),
                value,
            );
            blobs.extend(blob);
        }
        if let Some(t) = task.started_at {
            item.insert("started_at_ms".into(), n(ms(&t)));
        }
        if let Some(t) = task.finished_at {
            item.insert("finished_at_ms".into(), n(ms(&t)));
        }
        if let Some(k) = owner_key {
            item.insert("owner_key".into(), s(k));
        }
        Ok((item, blobs))
    }

    /// The task the owner's key stands for, if the key was used since `since`.
    async fn keyed_task(&self, owner_key: &str, since: Timestamp) -> Result<Option<Task>, Error> {
        let Some(item) = self
            .item(&self.tables.idempotency, "owner_key", owner_key)
            .await?
        else {
            return Ok(None);
        };
        if opt_n(&item, "created_at_ms")?.unwrap_or(i64::MIN) < ms(&since) {
            return Ok(None);
        }
        TaskStore::get(self, uuid_of(&item, "task_id")?).await
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create(&self, user: &User) -> Result<(), Error> {
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.users)
            .item("username", s(&user.username))
            .item("id", s(user.id.to_string()))
            .item("password_hash", s(&user.password_hash))
            .item("created_at_ms", n(ms(&user.created_at)))
            .condition_expression("attribute_not_exists(username)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "username {:?} is taken",
                    user.username
                )))
            }
            Err(e) => Err(sdk_error(WHAT, e)),
        }
    }

    async fn get_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        self.item(&self.tables.users, "username", username)
            .await?
            .as_ref()
            .map(user_of)
            .transpose()
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.users)
            .index_name(USERS_BY_ID)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", s(id.to_string()))
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        out.items().first().map(user_of).transpose()
    }
}

fn user_of(item: &Item) -> Result<User, Error> {
    Ok(User {
        id: uuid_of(item, "id")?,
        username: get_s(item, "username")?.to_owned(),
        password_hash: get_s(item, "password_hash")?.to_owned(),
        created_at: from_ms(opt_n(item, "created_at_ms")?.unwrap_or(0))?,
    })
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put(&self, session: &Session) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.tables.sessions)
            .item("jti", s(&session.jti))
            .item("user_id", s(session.user_id.to_string()))
            .item("expires_at_ms", n(ms(&session.expires_at)))
            // What DynamoDB's TTL reads: seconds since the epoch.
            .item("expires_at_epoch", n(session.expires_at.timestamp() + 1))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }

    async fn get(&self, jti: &str) -> Result<Option<Session>, Error> {
        let Some(item) = self.item(&self.tables.sessions, "jti", jti).await? else {
            return Ok(None);
        };
        let expires_at = from_ms(opt_n(&item, "expires_at_ms")?.unwrap_or(0))?;
        // TTL deletes expired items eventually, not on time: check here.
        if expires_at <= time::now() {
            return Ok(None);
        }
        Ok(Some(Session {
            jti: get_s(&item, "jti")?.to_owned(),
            user_id: uuid_of(&item, "user_id")?,
            expires_at,
        }))
    }

    async fn revoke(&self, jti: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.tables.sessions)
            .key("jti", s(jti))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.item(&self.tables.sessions, "jti", "ping")
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
    ) -> Result<Created, Error> {
        let owner_key = idempotency_key.map(|k| format!("{}#{k}", task.owner));
        if let Some(k) = &owner_key
            && let Some(first) = self.keyed_task(k, key_since).await?
        {
            return Ok(Created::Existing(Box::new(first)));
        }
        let (item, blobs) = self.new_task_item(task, owner_key.as_deref()).await?;
        let Some(owner_key) = owner_key else {
            let put = self
                .client
                .put_item()
                .table_name(&self.tables.tasks)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await;
            return match put {
                Ok(_) => Ok(Created::New),
                Err(e) => {
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception())
                    {
                        if self.holds_blobs(task.id, &blobs).await? {
                            // An SDK retry of our own write that had gone through.
                            return Ok(Created::New);
                        }
                        self.forget_blobs(blobs).await;
                        Err(Error::Conflict(format!("task {} exists", task.id)))
                    } else {
                        // The write may have gone through: keep what it may point to.
                        Err(sdk_error(WHAT, e))
                    }
                }
            };
        };
        let put_task = Put::builder()
            .table_name(&self.tables.tasks)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| Error::Backend(e.into()))?;
        // The key is free, or last used before the window: take it with the task, atomically.
        let window = (task.created_at - key_since).max(chrono::Duration::days(1));
        let put_key = Put::builder()
            .table_name(&self.tables.idempotency)
            .item("owner_key", s(&owner_key))
            .item("task_id", s(task.id.to_string()))
            .item("created_at_ms", n(ms(&task.created_at)))
            .item(
                "expires_at_epoch",
                n((task.created_at + window).timestamp() + 1),
            )
            .condition_expression("attribute_not_exists(owner_key) OR created_at_ms < :since")
            .expression_attribute_values(":since", n(ms(&key_since)))
            .build()
            .map_err(|e| Error::Backend(e.into()))?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_task).build())
            .transact_items(TransactWriteItem::builder().put(put_key).build())
            .send()
            .await;
        let e = match written {
            Ok(_) => return Ok(Created::New),
            Err(e) => e,
        };
        let Some(cancelled) = e.as_service_error().and_then(|s| match s {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
            _ => None,
        }) else {
            // The write may have gone through: keep what it may point to.
            return Err(sdk_error(WHAT, e));
        };
        if self.holds_blobs(task.id, &blobs).await? {
            // An SDK retry of our own transaction that had gone through.
            return Ok(Created::New);
        }
        self.forget_blobs(blobs).await;
        let reason = |i: usize| {
            cancelled
                .cancellation_reasons()
                .get(i)
                .and_then(|r| r.code())
                .unwrap_or("None")
                .to_owned()
        };
        if reason(0) == "ConditionalCheckFailed" {
            return Err(Error::Conflict(format!("task {} exists", task.id)));
        }
        // The key was taken meanwhile, or two requests with it collided
        // (TransactionConflict): whichever task holds it now stands.
        if let Some(first) = self.keyed_task(&owner_key, key_since).await? {
            return Ok(Created::Existing(Box::new(first)));
        }
        if reason(1) == "ConditionalCheckFailed" {
            return Err(Error::Conflict("idempotency key in use".into()));
        }
        tracing::warn!(first = %reason(0), second = %reason(1), "task transaction cancelled");
        Err(Error::Unavailable(WHAT.into()))
    }

    async fn get(&self, id: TaskId) -> Result<Option<Task>, Error> {
        match self.task_item(id).await? {
            Some(item) => self.task_of(&item).await.map(Some),
            None => Ok(None),
        }
    }

    /// Only the small attributes: a status poll reads one capacity unit, not the spec.
    async fn summary(&self, id: TaskId) -> Result<Option<TaskSummary>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.tasks)
            .key("id", s(id.to_string()))
            .consistent_read(true)
            .projection_expression(
                "id, #o, kind, #s, created_at_ms, started_at_ms, finished_at_ms, expires_at_epoch",
            )
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#s", "status")
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        out.item
            .as_ref()
            .filter(|item| !expired(item))
            .map(summary_of)
            .transpose()
    }

    async fn count_active(&self, owner: UserId, at_most: usize) -> Result<usize, Error> {
        self.count_of(owner, &[TaskStatus::Queued, TaskStatus::Running], at_most)
            .await
    }

    async fn count_running(&self, owner: UserId, at_most: usize) -> Result<usize, Error> {
        self.count_of(owner, &[TaskStatus::Running], at_most).await
    }

    async fn list_by_owner(
        &self,
        owner: UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, Error> {
        let before = cursor
            .map(decode_cursor)
            .transpose()?
            .map(|(ms, id)| list_key(ms, id));
        let want = limit + 1;
        let mut items: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        // A query page stops at 1 MB; keep reading until the page is full (bounded).
        for _ in 0..64 {
            let mut q = self
                .client
                .query()
                .table_name(&self.tables.tasks)
                .index_name(TASKS_BY_OWNER)
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":o", s(owner.to_string()))
                .scan_index_forward(false)
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            q = match &before {
                Some(b) => q
                    .key_condition_expression("#o = :o AND list_key < :b")
                    .expression_attribute_values(":b", s(b)),
                None => q.key_condition_expression("#o = :o"),
            };
            let out = q.send().await.map_err(|e| sdk_error(WHAT, e))?;
            items.extend(
                out.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !expired(i)),
            );
            start = out.last_evaluated_key;
            if items.len() >= want || start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        // From the index's summary projection: no spec, no result, no blob read.
        let tasks = items
            .iter()
            .take(limit)
            .map(summary_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match (more, tasks.last()) {
            (true, Some(t)) => Some(encode_cursor(ms(&t.created_at), t.id)),
            _ => None,
        };
        Ok(Page {
            items: tasks,
            next_cursor,
        })
    }

    async fn mark_published(&self, id: TaskId) -> Result<(), Error> {
        let cleared = self
            .client
            .update_item()
            .table_name(&self.tables.tasks)
            .key("id", s(id.to_string()))
            .update_expression("REMOVE outbox")
            .condition_expression("attribute_exists(id)")
            .send()
            .await;
        match cleared {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(WHAT, e)),
        }
    }

    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.tasks)
            .index_name(TASKS_OUTBOX)
            .key_condition_expression("outbox = :p AND created_at_ms < :b")
            .expression_attribute_values(":p", s(OUTBOX_PENDING))
            .expression_attribute_values(":b", n(ms(&before)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let mut tasks = Vec::new();
        for key in out.items.unwrap_or_default() {
            if let Some(task) = TaskStore::get(self, uuid_of(&key, "id")?).await? {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    async fn transition(&self, id: TaskId, t: &Transition) -> Result<TransitionOutcome, Error> {
        if t.from.is_empty() {
            return match TaskStore::summary(self, id).await? {
                Some(task) => Ok(TransitionOutcome::Rejected(task)),
                None => Err(Error::NotFound(format!("task {id} not found"))),
            };
        }
        let mut set = vec!["#s = :to".to_owned()];
        let mut remove = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.tasks)
            .key("id", s(id.to_string()))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", s(t.to.as_str()))
            .return_values(ReturnValue::AllNew);
        let mut from = Vec::new();
        for (i, status) in t.from.iter().enumerate() {
            from.push(format!(":f{i}"));
            update = update.expression_attribute_values(format!(":f{i}"), s(status.as_str()));
        }
        if let Some(at) = t.started_at {
            set.push("started_at_ms = :sa".into());
            update = update.expression_attribute_values(":sa", n(ms(&at)));
        }
        if let Some(at) = t.finished_at {
            set.push("finished_at_ms = :fa".into());
            update = update.expression_attribute_values(":fa", n(ms(&at)));
        }
        if let Some(lease) = t.lease {
            set.push("lease_holder = :lh, lease_until_ms = :lu".into());
            update = update
                .expression_attribute_values(":lh", s(lease.holder.to_string()))
                .expression_attribute_values(":lu", n(ms(&lease.until)));
        }
        let lease = match t.lease_condition {
            LeaseCondition::Any => "",
            LeaseCondition::FreeAt { holder, at } => {
                update = update
                    .expression_attribute_values(":running", s(TaskStatus::Running.as_str()))
                    .expression_attribute_values(":at", n(ms(&at)))
                    .expression_attribute_values(":holder", s(holder.to_string()));
                " AND (#s <> :running OR attribute_not_exists(lease_until_ms) \
                 OR lease_until_ms < :at OR lease_holder = :holder)"
            }
            LeaseCondition::HeldBy(holder) => {
                update = update.expression_attribute_values(":holder", s(holder.to_string()));
                " AND lease_holder = :holder"
            }
        };
        let mut blob = None;
        if let Some(result) = &t.result {
            let (how, value, key) = self
                .store_json(json::<TaskResult>(result)?, || {
                    format!("spill/tasks/{id}/result-{}.json", uuid::Uuid::new_v4())
                })
                .await?;
            blob = key;
            if how == "inline" {
                set.push("#r = :r".into());
                remove.push("result_ref");
            } else {
                set.push("result_ref = :r".into());
                remove.push("#r");
            }
            update = update
                .expression_attribute_names("#r", "result")
                .expression_attribute_values(":r", value);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let out = update
            .update_expression(expression)
            .condition_expression(format!(
                "attribute_exists(id) AND #s IN ({}){lease}",
                from.join(", ")
            ))
            .send()
            .await;
        match out {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(TransitionOutcome::Applied(summary_of(&item)?))
            }
            Err(e) => {
                if !e
                    .as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
                {
                    // The update may have gone through: keep what it may point to.
                    return Err(sdk_error(WHAT, e));
                }
                let Some(item) = self.task_item(id).await? else {
                    self.forget_blobs(blob).await;
                    return Err(Error::NotFound(format!("task {id} not found")));
                };
                if blob.is_some() && opt_s(&item, "result_ref") == blob.as_deref() {
                    // An SDK retry of our own update that had gone through.
                    return Ok(TransitionOutcome::Applied(summary_of(&item)?));
                }
                self.forget_blobs(blob).await;
                Ok(TransitionOutcome::Rejected(summary_of(&item)?))
            }
        }
    }

    async fn delete(&self, id: TaskId) -> Result<(), Error> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.tasks)
            .key("id", s(id.to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let Some(old) = out.attributes else {
            return Ok(());
        };
        let blobs = ["spec_ref", "result_ref"]
            .iter()
            .filter_map(|a| opt_s(&old, a).map(str::to_owned))
            .collect::<Vec<_>>();
        self.forget_blobs(blobs).await;
        if let Some(owner_key) = opt_s(&old, "owner_key") {
            // Only if the key still names this task.
            let freed = self
                .client
                .delete_item()
                .table_name(&self.tables.idempotency)
                .key("owner_key", s(owner_key))
                .condition_expression("task_id = :id")
                .expression_attribute_values(":id", s(id.to_string()))
                .send()
                .await;
            if let Err(e) = freed
                && !e
                    .as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                return Err(sdk_error(WHAT, e));
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.task_item(uuid::Uuid::nil()).await.map(|_| ())
    }
}

/// DynamoDB: the rate limiter's fixed-window counters, one item per key and window
/// (`ADD count :1` in one `UpdateItem`, so concurrent hits from every Lambda instance are
/// all counted), removed by TTL after the window.
#[derive(Clone)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

impl DynamoRateLimiter {
    /// The table (`LIMITS_TABLE`): key `key` (S), TTL attribute `expires_at_epoch`.
    pub fn new(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self {
            client: Client::new(sdk),
            table,
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<RateDecision, Error> {
        let now = time::now();
        let (index, left) = window_of(now.timestamp_millis(), window);
        let expires = now.timestamp() + i64::try_from(window.as_secs()).unwrap_or(0) * 2 + 1;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key", s(format!("{key}:{index}")))
            .update_expression(
                "ADD #c :one SET expires_at_epoch = if_not_exists(expires_at_epoch, :exp)",
            )
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let count = out
            .attributes()
            .and_then(|a| opt_n(a, "count").ok().flatten())
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(u64::MAX);
        Ok(RateDecision::of(count, limit, left))
    }
}

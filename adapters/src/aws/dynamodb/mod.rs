//! DynamoDB: users (the username is the key, so a conditional put makes it unique; a GSI
//! finds them by id), sessions and idempotency keys with a TTL attribute (expiry is also
//! checked on read: TTL deletion is lazy), and tasks with a GSI on owner + a sortable
//! `<created ms>#<id>` key for the list cursor. A status change is one conditional
//! `UpdateItem … IF status IN (…)`. A task's spec or result bigger than [`super::SPILL_BYTES`]
//! lives in the blob store and the item keeps its key. One file per table or concern: `users`,
//! `sessions`, `tasks` (`create`, `transition`, `outbox`), `limits`; `codec` reads and
//! writes items, `spill` the values too big for one.

mod codec;
mod create;
mod limits;
mod outbox;
mod sessions;
mod spill;
mod tasks;
mod transition;
mod users;

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
use codec::{Item, expired, s};

pub use limits::DynamoRateLimiter;
pub use outbox::OUTBOX_SHARDS;

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

pub(super) const WHAT: &str = "the database";

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

    /// Tasks are kept `days` days: the item expires `EXPIRY_MARGIN` before the blobs,
    /// which the bucket's lifecycle deletes after `days` days. `None`: kept for ever.
    pub fn with_retention(mut self, days: Option<u32>) -> Self {
        self.retention = days.map(|d| chrono::Duration::days(i64::from(d)) - EXPIRY_MARGIN);
        self
    }

    /// One item by its key, read consistently (right after a write it is there).
    pub(super) async fn item(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<Item>, Error> {
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
    pub(super) async fn task_item(&self, id: TaskId) -> Result<Option<Item>, Error> {
        Ok(self
            .item(&self.tables.tasks, "id", &id.to_string())
            .await?
            .filter(|item| !expired(item)))
    }
}

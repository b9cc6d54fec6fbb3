//! The outbox: a task is stored with `outbox` set until it is known to be queued, and a
//! sparse index (`by-outbox`: `outbox`, then `created_at_ms`) finds those its creator left
//! behind. The attribute's value is one of [`OUTBOX_SHARDS`] partitions chosen by the
//! task's id, so the index's two writes per task spread over as many partitions instead
//! of all landing on one (a partition takes about 1 000 writes a second); the sweeper
//! reads them all, and the single partition of stores written before, `pending`.

use aws_sdk_dynamodb::types::AttributeValue;
use codebox_core::Error;
use codebox_core::domain::{Task, TaskId};
use codebox_core::ports::TaskStore;
use codebox_core::time::Timestamp;
use futures::future::try_join_all;

use super::codec::{Item, ms, n, opt_n, s, uuid_of};
use super::{DynamoStore, TASKS_OUTBOX, WHAT, sdk_error};

/// The outbox index's partitions.
pub const OUTBOX_SHARDS: u32 = 16;
/// The one partition of items stored before the outbox was sharded: still swept.
const UNSHARDED: &str = "pending";

/// The outbox partition of a task.
pub(super) fn shard_of(id: TaskId) -> String {
    format!("pending-{:02}", (id.as_u128() % u128::from(OUTBOX_SHARDS)))
}

/// Every partition the sweeper reads.
fn partitions() -> impl Iterator<Item = String> {
    (0..OUTBOX_SHARDS)
        .map(|k| format!("pending-{k:02}"))
        .chain(std::iter::once(UNSHARDED.to_owned()))
}

impl DynamoStore {
    pub(super) async fn mark_published(&self, id: TaskId) -> Result<(), Error> {
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

    /// The oldest `limit` tasks still in the outbox created before `before`, over every
    /// partition (read at once).
    pub(super) async fn unpublished(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Task>, Error> {
        let reads = partitions().map(|partition| self.outbox_keys(partition, before, limit));
        let mut keys: Vec<(i64, TaskId)> = Vec::new();
        for found in try_join_all(reads).await? {
            for key in found {
                let created = opt_n(&key, "created_at_ms")?.unwrap_or(i64::MAX);
                keys.push((created, uuid_of(&key, "id")?));
            }
        }
        keys.sort_unstable();
        let mut tasks = Vec::new();
        for (_, id) in keys.into_iter().take(limit) {
            if let Some(task) = TaskStore::get(self, id).await? {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    /// One partition's oldest keys created before `before`.
    async fn outbox_keys(
        &self,
        partition: String,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Item>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.tasks)
            .index_name(TASKS_OUTBOX)
            .key_condition_expression("outbox = :p AND created_at_ms < :b")
            .expression_attribute_values(":p", AttributeValue::S(partition))
            .expression_attribute_values(":b", n(ms(&before)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(out.items.unwrap_or_default())
    }
}

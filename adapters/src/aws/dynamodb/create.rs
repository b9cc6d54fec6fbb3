//! A new task: its item, and its idempotency key taken with it in one transaction.

use super::codec::*;
use super::*;

impl DynamoStore {
    pub(super) async fn create_task(
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

    /// The item of a new task, and the blobs it refers to.
    pub(super) async fn new_task_item(
        &self,
        task: &Task,
        owner_key: Option<&str>,
    ) -> Result<(Item, Vec<String>), Error> {
        let mut blobs = Vec::new();
        let mut item = Item::from([
            ("id".to_owned(), s(task.id.to_string())),
            ("owner".to_owned(), s(task.owner.to_string())),
            ("status".to_owned(), s(task.status.as_str())),
            ("kind".to_owned(), s(task.kind().as_str())),
            ("created_at_ms".to_owned(), n(ms(&task.created_at))),
            (
                "list_key".to_owned(),
                s(list_key(ms(&task.created_at), task.id)),
            ),
        ]);
        item.insert("outbox".into(), s(super::outbox::shard_of(task.id)));
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
    pub(super) async fn keyed_task(
        &self,
        owner_key: &str,
        since: Timestamp,
    ) -> Result<Option<Task>, Error> {
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

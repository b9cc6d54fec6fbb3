//! Tasks: an item per task, a GSI on owner + a sortable `<created ms>#<id>` key for the
//! list cursor, and counts of an owner's tasks by status.

use super::codec::*;
use super::*;

impl DynamoStore {
    /// A count-only query of the owner's index, filtered on `statuses`: no item is
    /// returned and no spilled value read.
    pub(super) async fn count_of(
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

    pub(super) async fn task_of(&self, item: &Item) -> Result<Task, Error> {
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
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
    ) -> Result<Created, Error> {
        self.create_task(task, idempotency_key, key_since).await
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
        DynamoStore::mark_published(self, id).await
    }

    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>, Error> {
        DynamoStore::unpublished(self, before, limit).await
    }

    async fn transition(&self, id: TaskId, t: &Transition) -> Result<TransitionOutcome, Error> {
        self.apply(id, t).await
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

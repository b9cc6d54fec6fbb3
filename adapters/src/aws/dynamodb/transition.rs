//! A status change: one conditional `UpdateItem … IF status IN (…)`, with the run's lease.

use super::codec::*;
use super::*;

impl DynamoStore {
    pub(super) async fn apply(
        &self,
        id: TaskId,
        t: &Transition,
    ) -> Result<TransitionOutcome, Error> {
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
        } else if let Some(at) = t.first_started_at {
            set.push("started_at_ms = if_not_exists(started_at_ms, :sa)".into());
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
        let kind = match t.kind {
            Some(kind) => {
                update = update
                    .expression_attribute_names("#k", "kind")
                    .expression_attribute_values(":kind", s(kind.as_str()));
                " AND #k = :kind"
            }
            None => "",
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
                "attribute_exists(id) AND #s IN ({}){lease}{kind}",
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
}

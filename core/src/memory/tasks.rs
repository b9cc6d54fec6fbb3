use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::domain::{
    Lease, LeaseCondition, Task, TaskId, TaskStatus, TaskSummary, Transition, TransitionOutcome,
    UserId,
};
use crate::error::{Error, Result};
use crate::ports::{Created, Page, TaskStore};
use crate::time::Timestamp;

#[derive(Default)]
pub struct MemoryTaskStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskId, Task>,
    /// Per owner, ordered by (created_at in ms, id): listing walks it backwards.
    by_owner: HashMap<UserId, BTreeSet<(i64, TaskId)>>,
    /// (owner, key) → (task, when the key was first used).
    keys: HashMap<(UserId, String), (TaskId, Timestamp)>,
    /// The outbox: tasks stored whose message is not known to be in the queue.
    unpublished: BTreeSet<(i64, TaskId)>,
    /// Running tasks' leases: who holds them, until when.
    leases: HashMap<TaskId, Lease>,
}

/// The list cursor: the position of the last item of a page, `<created_ms>.<id>`. Every
/// string of that shape (the OpenAPI document gives its pattern) is a valid position.
pub fn encode_cursor(created_ms: i64, id: TaskId) -> String {
    format!("{created_ms}.{}", id.hyphenated())
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, TaskId)> {
    let invalid = || {
        Error::Invalid("cursor is not one this service gave out (<created ms>.<task id>)".into())
    };
    let (ms, id) = cursor.split_once('.').ok_or_else(invalid)?;
    if ms.is_empty() || ms.len() > 15 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.len() != 36 {
        return Err(invalid());
    }
    Ok((
        ms.parse().map_err(|_| invalid())?,
        TaskId::try_parse(id).map_err(|_| invalid())?,
    ))
}

#[async_trait]
impl TaskStore for MemoryTaskStore {
    async fn create(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
    ) -> Result<Created> {
        let mut inner = self.inner.write();
        if inner.tasks.contains_key(&task.id) {
            return Err(Error::Conflict(format!("task {} exists", task.id)));
        }
        if let Some(key) = idempotency_key {
            let k = (task.owner, key.to_owned());
            if let Some((first, used_at)) = inner.keys.get(&k)
                && *used_at >= key_since
                && let Some(t) = inner.tasks.get(first)
            {
                return Ok(Created::Existing(Box::new(t.clone())));
            }
            inner.keys.insert(k, (task.id, task.created_at));
        }
        inner
            .by_owner
            .entry(task.owner)
            .or_default()
            .insert((task.created_at.timestamp_millis(), task.id));
        inner.tasks.insert(task.id, task.clone());
        inner
            .unpublished
            .insert((task.created_at.timestamp_millis(), task.id));
        Ok(Created::New)
    }

    async fn get(&self, id: TaskId) -> Result<Option<Task>> {
        Ok(self.inner.read().tasks.get(&id).cloned())
    }

    async fn list_by_owner(
        &self,
        owner: UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page> {
        let after = cursor.map(decode_cursor).transpose()?;
        let inner = self.inner.read();
        let Some(index) = inner.by_owner.get(&owner) else {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        };
        let keys: Vec<(i64, TaskId)> = match after {
            Some(pos) => index.range(..pos).rev().take(limit + 1).copied().collect(),
            None => index.iter().rev().take(limit + 1).copied().collect(),
        };
        let more = keys.len() > limit;
        let items: Vec<TaskSummary> = keys
            .iter()
            .take(limit)
            .filter_map(|(_, id)| inner.tasks.get(id).map(Task::summary))
            .collect();
        let next_cursor = match (more, keys.get(limit.saturating_sub(1))) {
            (true, Some((ms, id))) => Some(encode_cursor(*ms, *id)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn transition(&self, id: TaskId, transition: &Transition) -> Result<TransitionOutcome> {
        let mut inner = self.inner.write();
        let Inner { tasks, leases, .. } = &mut *inner;
        let task = tasks
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("task {id} not found")))?;
        let current = leases.get(&id);
        let lease_ok = match transition.lease_condition {
            LeaseCondition::Any => true,
            LeaseCondition::FreeAt { holder, at } => {
                task.status != TaskStatus::Running
                    || current.is_none_or(|l| l.until < at || l.holder == holder)
            }
            LeaseCondition::HeldBy(holder) => current.is_some_and(|l| l.holder == holder),
        };
        let kind_ok = transition.kind.is_none_or(|k| k == task.kind());
        if !transition.from.contains(&task.status) || !lease_ok || !kind_ok {
            return Ok(TransitionOutcome::Rejected(task.summary()));
        }
        if let Some(lease) = transition.lease {
            leases.insert(id, lease);
        }
        if transition.to.is_finished() {
            leases.remove(&id);
        }
        task.status = transition.to;
        if let Some(at) = transition.started_at {
            task.started_at = Some(at);
        }
        if task.started_at.is_none() {
            task.started_at = transition.first_started_at;
        }
        if let Some(at) = transition.finished_at {
            task.finished_at = Some(at);
        }
        if let Some(r) = &transition.result {
            task.result = Some(r.clone());
        }
        Ok(TransitionOutcome::Applied(task.summary()))
    }

    async fn delete(&self, id: TaskId) -> Result<()> {
        let mut inner = self.inner.write();
        if let Some(task) = inner.tasks.remove(&id) {
            if let Some(index) = inner.by_owner.get_mut(&task.owner) {
                index.remove(&(task.created_at.timestamp_millis(), id));
            }
            inner.keys.retain(|_, (t, _)| *t != id);
            inner.leases.remove(&id);
            inner
                .unpublished
                .remove(&(task.created_at.timestamp_millis(), id));
        }
        Ok(())
    }

    async fn mark_published(&self, id: TaskId) -> Result<()> {
        let mut inner = self.inner.write();
        if let Some(at) = inner
            .tasks
            .get(&id)
            .map(|t| t.created_at.timestamp_millis())
        {
            inner.unpublished.remove(&(at, id));
        }
        Ok(())
    }

    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>> {
        let inner = self.inner.read();
        Ok(inner
            .unpublished
            .range(..(before.timestamp_millis(), TaskId::nil()))
            .take(limit)
            .filter_map(|(_, id)| inner.tasks.get(id).cloned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::task_store(&super::MemoryTaskStore::default()).await;
    }
}

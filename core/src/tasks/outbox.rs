//! The outbox: a task is stored before it is published, and what a dead creator left
//! unpublished is published by the sweeper.

use super::TaskService;
use crate::domain::{TaskMessage, TaskStatus};
use crate::error::Result;
use crate::time;

/// How old a task still in the outbox must be before the sweeper publishes it: its
/// creator's request has ended by then (a function times out within 30 s, and its SDK
/// calls well before).
pub const SWEEP_AFTER: chrono::Duration = chrono::Duration::minutes(1);
/// Tasks the sweeper publishes per round at most.
pub const SWEEP_BATCH: usize = 100;

impl TaskService {
    /// Runs [`TaskService::sweep`] every `every` until `stop`, for tasks older than
    /// [`SWEEP_AFTER`] (the gateway; on AWS the `sweep` function, once a minute).
    pub async fn sweep_forever(
        &self,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let first = crate::shutdown::First::AfterOnePeriod;
        crate::shutdown::every(every, first, stop, || async {
            if let Err(e) = self.sweep(SWEEP_AFTER, SWEEP_BATCH).await {
                tracing::warn!(error = %e, "sweeping the outbox failed; trying again later");
            }
        })
        .await;
    }

    /// The outbox sweeper: publishes every task stored more than `after` ago whose
    /// message is not known to be in the queue (its creator died between the two), at
    /// most `limit` per call, and returns how many it published. A task cancelled
    /// meanwhile just leaves the outbox.
    pub async fn sweep(&self, after: chrono::Duration, limit: usize) -> Result<usize> {
        let mut published = 0;
        for task in self.tasks.unpublished(time::now() - after, limit).await? {
            if task.status == TaskStatus::Queued {
                let message = TaskMessage {
                    task_id: task.id,
                    spec: task.spec.clone(),
                    enqueued_at: time::now(),
                };
                self.queue.publish(&message).await?;
                published += 1;
                tracing::warn!(task_id = %task.id, "published a task its creator left unqueued");
            }
            self.tasks.mark_published(task.id).await?;
        }
        Ok(published)
    }
}

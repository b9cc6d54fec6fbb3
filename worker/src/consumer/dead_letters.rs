//! Messages past their last delivery: their tasks are committed `failed`, never lost.

use super::*;

impl Worker {
    /// Ends the tasks of dead-lettered messages as `failed` (the broker gave up on them,
    /// e.g. because every delivery crashed its worker), until `shutdown`.
    pub async fn fail_dead_letters(
        &self,
        dead: Arc<dyn QueueConsumer>,
        shutdown: CancellationToken,
    ) {
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = dead.receive(self.config.receive_wait) => r,
            };
            match received {
                Ok(Some(d)) => {
                    let id = d.message.task_id;
                    let result = self
                        .control
                        .commit(&Commit {
                            task_id: id,
                            status: TaskStatus::Failed,
                            result: TaskResult::without_output(
                                d.message.spec.kind(),
                                Verdict::InternalError,
                                Some(
                                    "the platform gave up on this task after repeated failures"
                                        .into(),
                                ),
                            ),
                            notify: d.message.spec.webhook().is_some(),
                        })
                        .await;
                    let settled = match result {
                        Ok(()) => {
                            tracing::warn!(task_id = %id, "dead-lettered task marked failed");
                            metrics::counter!("codebox_tasks_dead_lettered_total").increment(1);
                            d.settle.ack().await
                        }
                        Err(e) => {
                            tracing::warn!(task_id = %id, error = %e, "could not fail a dead-lettered task; later");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            d.settle.retry().await
                        }
                    };
                    if let Err(e) = settled {
                        tracing::warn!(error = %e, "settling a dead letter failed");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading dead letters failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    pub(super) async fn give_up(&self, message: &TaskMessage, attempts: u32) -> Result<(), Error> {
        metrics::counter!("codebox_tasks_given_up_total").increment(1);
        self.commit(Commit {
            task_id: message.task_id,
            status: TaskStatus::Failed,
            result: TaskResult::without_output(
                message.spec.kind(),
                Verdict::InternalError,
                Some(format!(
                    "the platform could not run this task after {attempts} attempts"
                )),
            ),
            notify: message.spec.webhook().is_some(),
        })
        .await
    }
}

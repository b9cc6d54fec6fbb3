//! A run and its outcome stored through the API, retried while the API answers.

use super::*;

impl Worker {
    /// Runs a started task (its delivery's `attempt`) and stores its outcome.
    pub(super) async fn run_and_commit(
        &self,
        message: &TaskMessage,
        attempt: u32,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        let (status, result) = match &message.spec {
            TaskSpec::Code(spec) => {
                let (progress, forwarder) = if self.config.live_events {
                    let (progress, events) = Progress::channel(PROGRESS_BACKLOG);
                    let control = self.control.clone();
                    let forwarder =
                        tokio::spawn(forward_progress(control, message.task_id, attempt, events));
                    (Some(progress), Some(forwarder))
                } else {
                    (None, None)
                };
                let job = SandboxJob {
                    task_id: message.task_id,
                    spec: spec.clone(),
                    progress,
                };
                let started = Instant::now();
                let result = self.run_sandboxed(&job, cancel).await;
                drop(job);
                if let Some(mut forwarder) = forwarder {
                    // The last output reaches listeners before the status that ends it;
                    // a slow API costs the live view at most this long.
                    if tokio::time::timeout(PROGRESS_FLUSH, &mut forwarder)
                        .await
                        .is_err()
                    {
                        forwarder.abort();
                    }
                }
                let result = result?;
                metrics::histogram!("codebox_sandbox_seconds", "language" => spec.language.clone())
                    .record(started.elapsed().as_secs_f64());
                (TaskStatus::Completed, TaskResult::Code(result))
            }
            TaskSpec::Image(spec) => self.run_image(message, spec).await?,
        };
        self.runs.fetch_add(1, Ordering::SeqCst);
        let language = message.spec.language().unwrap_or("image").to_owned();
        codebox_core::telemetry::emf(
            &[
                ("Language", &language),
                ("Verdict", result.verdict().as_str()),
            ],
            &[("Tasks", 1.0, "Count")],
        );
        metrics::counter!("codebox_tasks_total",
            "language" => language, "verdict" => result.verdict().as_str())
        .increment(1);
        self.commit(Commit {
            task_id: message.task_id,
            status,
            result,
            notify: message.spec.webhook().is_some(),
        })
        .await
    }

    /// Stores an outcome through outages. An outcome the API refuses as invalid would be
    /// refused on every delivery: the task ends `failed` with the reason instead.
    pub(super) async fn commit(&self, commit: Commit) -> Result<(), Error> {
        let control = &self.control;
        let timer = crate::stages::Timer::start("commit");
        // The outcome is in hand and a commit is idempotent (the first outcome stands):
        // a commit that fails while the API answers (a timeout on a large outcome, a 5xx)
        // is tried again here, several times, rather than running the task again — which
        // would spend a delivery and, three times over, end the task `failed`.
        let stored = self
            .hold(
                "the API",
                COMMIT_TRIES,
                || control.commit(&commit),
                || control.ping(),
                OnStop::KeepTrying,
            )
            .await;
        let reason = match stored {
            Err(Error::Invalid(reason) | Error::TooLarge(reason)) => reason,
            other => {
                timer.done();
                return other;
            }
        };
        tracing::error!(%reason, "the API refused the outcome");
        metrics::counter!("codebox_commits_refused_total").increment(1);
        let failed = Commit {
            task_id: commit.task_id,
            status: TaskStatus::Failed,
            result: TaskResult::without_output(
                commit.result.kind(),
                Verdict::InternalError,
                Some(format!("the outcome could not be stored: {reason}")),
            ),
            notify: commit.notify,
        };
        self.hold(
            "the API",
            COMMIT_TRIES,
            || control.commit(&failed),
            || control.ping(),
            OnStop::KeepTrying,
        )
        .await
    }
}

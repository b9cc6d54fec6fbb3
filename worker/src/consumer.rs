//! The consumer loop: receive a message, mark the task running, run it (code in the
//! sandbox, images in-process), commit the outcome, and only then ack. A platform failure
//! is retried; on the last delivery the task is committed `failed` so it never vanishes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codebox_core::domain::{
    Commit, ImageResult, ImageSpec, TaskMessage, TaskResult, TaskSpec, TaskStatus, Verdict,
};
use codebox_core::ports::{
    BlobStore, Delivery, QueueConsumer, Sandbox, SandboxJob, Settle, TaskControl,
};
use codebox_core::{Error, time};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Tasks run at once by this worker.
    pub concurrency: usize,
    /// Deliveries of one message before the task is given up as `failed`; the same
    /// number the broker dead-letters after.
    pub max_deliveries: u32,
    /// How often a running task's status is checked for a cancel.
    pub cancel_poll: Duration,
    /// Long-poll wait of one receive.
    pub receive_wait: Duration,
    /// How long a delivery stays with this worker unless extended (SQS's visibility
    /// timeout): a running task's delivery is extended by this every third of it.
    /// `None` where the broker keeps a delivery until it is settled (RabbitMQ).
    pub lease: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            max_deliveries: 3,
            cancel_poll: Duration::from_millis(200),
            receive_wait: Duration::from_secs(1),
            lease: None,
        }
    }
}

/// Everything a worker talks to, as ports.
#[derive(Clone)]
pub struct Worker {
    pub consumer: Arc<dyn QueueConsumer>,
    pub control: Arc<dyn TaskControl>,
    pub sandbox: Arc<dyn Sandbox>,
    pub blobs: Arc<dyn BlobStore>,
    pub config: WorkerConfig,
}

/// What one step of the loop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A message was settled (acked, retried or dead-lettered).
    Processed,
    /// No message arrived within the wait.
    Empty,
}

/// How a message was settled, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Committed,
    Skipped,
    Retried,
    GaveUp,
}

impl Worker {
    /// Receives one message and handles it to the end. Tests drive the worker with this.
    pub async fn process_one(&self) -> Result<Outcome, Error> {
        match self.consumer.receive(self.config.receive_wait).await? {
            Some(delivery) => {
                self.handle(delivery).await;
                Ok(Outcome::Processed)
            }
            None => Ok(Outcome::Empty),
        }
    }

    /// Runs until `shutdown` is cancelled, with at most `concurrency` tasks at once.
    /// Tasks under way when it stops are finished first.
    pub async fn run(&self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut backoff = Duration::from_millis(100);
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.consumer.receive(self.config.receive_wait) => r,
            };
            match received {
                Ok(Some(delivery)) => {
                    backoff = Duration::from_millis(100);
                    let worker = self.clone();
                    tokio::spawn(async move {
                        worker.handle(delivery).await;
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "receiving failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Wait for the tasks under way.
        let _ = permits
            .acquire_many(self.config.concurrency.max(1) as u32)
            .await;
    }

    async fn handle(&self, delivery: Delivery) {
        let Delivery {
            message,
            attempt,
            settle,
        } = delivery;
        let span = tracing::info_span!("task", task_id = %message.task_id, attempt);
        async move {
            let wait = (time::now() - message.enqueued_at)
                .num_milliseconds()
                .max(0) as f64
                / 1000.0;
            metrics::histogram!("codebox_queue_wait_seconds").record(wait);
            metrics::gauge!("codebox_tasks_in_flight").increment(1.0);
            let settled = match self.execute_leased(&message, settle.as_ref()).await {
                Ok(true) => Settled::Committed,
                Ok(false) => Settled::Skipped,
                Err(e) if attempt >= self.config.max_deliveries => {
                    tracing::error!(error = %e, "giving up on the task");
                    match self.give_up(&message, attempt).await {
                        Ok(()) => Settled::GaveUp,
                        Err(e) => {
                            tracing::error!(error = %e, "could not record the failure");
                            Settled::Retried
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "task failed on the platform side; will retry");
                    Settled::Retried
                }
            };
            metrics::gauge!("codebox_tasks_in_flight").decrement(1.0);
            let result = match settled {
                Settled::Retried => settle.retry().await,
                Settled::Committed | Settled::Skipped | Settled::GaveUp => settle.ack().await,
            };
            if let Err(e) = result {
                // The broker delivers it again; the commit is idempotent.
                tracing::warn!(error = %e, ?settled, "settling the message failed");
            }
            tracing::debug!(?settled, "message settled");
        }
        .instrument(span)
        .await;
    }

    /// `execute`, keeping the delivery with this worker while it runs.
    async fn execute_leased(
        &self,
        message: &TaskMessage,
        settle: &dyn Settle,
    ) -> Result<bool, Error> {
        let Some(lease) = self.config.lease else {
            return self.execute(message).await;
        };
        let work = self.execute(message);
        tokio::pin!(work);
        let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(500)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    match settle.extend(lease).await {
                        Ok(()) => metrics::counter!("codebox_lease_extensions_total").increment(1),
                        Err(e) => tracing::warn!(error = %e, "could not extend the delivery"),
                    }
                }
            }
        }
    }

    /// Runs the task and commits its outcome. `Ok(false)`: not to be run (cancelled or
    /// finished meanwhile). `Err`: a platform failure worth another delivery.
    async fn execute(&self, message: &TaskMessage) -> Result<bool, Error> {
        if !self.control.start(message.task_id).await? {
            tracing::info!("task is cancelled or finished; skipping");
            return Ok(false);
        }
        let (status, result) = match &message.spec {
            TaskSpec::Code(spec) => {
                let job = SandboxJob {
                    task_id: message.task_id,
                    spec: spec.clone(),
                };
                let started = Instant::now();
                let result = self.run_watched(&job).await?;
                metrics::histogram!("codebox_sandbox_seconds", "language" => spec.language.clone())
                    .record(started.elapsed().as_secs_f64());
                (TaskStatus::Completed, TaskResult::Code(result))
            }
            TaskSpec::Image(spec) => self.run_image(message, spec).await?,
        };
        let language = message.spec.language().unwrap_or("image").to_owned();
        metrics::counter!("codebox_tasks_total",
            "language" => language, "verdict" => result.verdict().as_str())
        .increment(1);
        self.control
            .commit(&Commit {
                task_id: message.task_id,
                status,
                result,
            })
            .await?;
        Ok(true)
    }

    /// The sandbox run, with a watcher that cancels it when the task is cancelled.
    async fn run_watched(
        &self,
        job: &SandboxJob,
    ) -> Result<codebox_core::domain::CodeResult, Error> {
        let cancel = CancellationToken::new();
        let watcher = {
            let cancel = cancel.clone();
            let control = self.control.clone();
            let every = self.config.cancel_poll;
            let id = job.task_id;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match control.is_cancelled(id).await {
                        Ok(true) => {
                            tracing::info!(task_id = %id, "cancelled while running; stopping it");
                            cancel.cancel();
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => tracing::debug!(error = %e, "cancel check failed"),
                    }
                }
            })
        };
        let result = self.sandbox.run(job, cancel).await;
        watcher.abort();
        result
    }

    async fn run_image(
        &self,
        message: &TaskMessage,
        spec: &ImageSpec,
    ) -> Result<(TaskStatus, TaskResult), Error> {
        let input = self.blobs.get(&spec.input_key).await?.ok_or_else(|| {
            Error::Backend(anyhow::anyhow!("input blob {} is missing", spec.input_key))
        })?;
        let filter = spec.filter;
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || crate::filters::apply(&input, &filter))
            .await
            .map_err(|e| Error::Backend(anyhow::anyhow!("filter task: {e}")))?;
        metrics::histogram!("codebox_sandbox_seconds", "language" => "image")
            .record(started.elapsed().as_secs_f64());
        match output {
            Ok(png) => {
                let key = format!("output/{}.png", message.task_id);
                self.blobs.put(&key, png).await?;
                Ok((
                    TaskStatus::Completed,
                    TaskResult::Image(ImageResult {
                        verdict: Verdict::Ok,
                        output_key: Some(key),
                        error: None,
                    }),
                ))
            }
            // The input itself is bad: the platform could not produce an output.
            Err(e) => Ok((
                TaskStatus::Failed,
                TaskResult::Image(ImageResult {
                    verdict: Verdict::InternalError,
                    output_key: None,
                    error: Some(e.to_string()),
                }),
            )),
        }
    }

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

    async fn give_up(&self, message: &TaskMessage, attempts: u32) -> Result<(), Error> {
        metrics::counter!("codebox_tasks_given_up_total").increment(1);
        self.control
            .commit(&Commit {
                task_id: message.task_id,
                status: TaskStatus::Failed,
                result: TaskResult::without_output(
                    message.spec.kind(),
                    Verdict::InternalError,
                    Some(format!(
                        "the platform could not run this task after {attempts} attempts"
                    )),
                ),
            })
            .await
    }
}

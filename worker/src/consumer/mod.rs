//! The consumer loop: receive a message, mark the task running under this worker's lease,
//! run it (code in the sandbox, images in a child process under limits), commit the
//! outcome, and only then ack. A message that comes back while its task runs elsewhere
//! (a broker restart) waits for that run instead of running it twice.
//!
//! Two kinds of failure are told apart. An *outage* (the API, its store, the container
//! engine or the blob store does not answer, and its readiness probe fails too) is not
//! the task's fault: the worker holds the delivery (extending its lease where the broker
//! has one), retries with backoff, and takes no new message until the dependency is back,
//! so an outage spends no delivery of any message. A failure while the dependency answers
//! is the task's own: the message goes back to the broker, and on the last delivery the
//! task is committed `failed` so it never vanishes.

mod commit;
mod dead_letters;
mod execute;
mod outage;
mod progress;
mod runs;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use codebox_core::domain::{
    Commit, ImageResult, ImageSpec, LeaseId, StartDecision, TaskEvent, TaskId, TaskMessage,
    TaskResult, TaskSpec, TaskStatus, Verdict,
};
use codebox_core::ports::{
    BlobStore, Delivery, Progress, QueueConsumer, Sandbox, SandboxJob, Settle, TaskControl,
};
use codebox_core::{Error, time};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::run_watch::RunWatch;

use outage::{OnStop, Outage, STOPPING};
use progress::{PROGRESS_BACKLOG, PROGRESS_FLUSH, forward_progress};

/// Tries of a call that fails while its dependency answers, before it counts.
const HOLD_TRIES: u32 = 2;
/// Tries of a commit that fails while the API answers, before the delivery goes back.
const COMMIT_TRIES: u32 = 8;
/// How often a task running on another worker is looked at again.
const LEASE_RECHECK: Duration = Duration::from_secs(1);
/// How long a deferred task's message waits before it is delivered again (its owner ran
/// as many tasks as a user may).
const DEFER_FOR: Duration = Duration::from_secs(1);
/// A slot that deferred a task rests this long before it takes the next message: while
/// one user's backlog is deferred message by message, the API is asked at most this often
/// per slot, and other users' tasks behind it are still reached within a second or two.
const DEFER_PAUSE: Duration = Duration::from_millis(20);

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
    /// First and longest pause between two tries of a held call during an outage.
    pub hold_backoff: (Duration, Duration),
    /// How image filters run: the child binary and its limits.
    pub filter: crate::filters::child::FilterLimits,
    /// Whether a running task's output and tests go to the API as they happen (its live
    /// events); off where the API has no channel to carry them (AWS).
    pub live_events: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            max_deliveries: 3,
            cancel_poll: Duration::from_millis(200),
            receive_wait: Duration::from_secs(1),
            lease: None,
            hold_backoff: (Duration::from_millis(200), Duration::from_secs(5)),
            filter: crate::filters::child::FilterLimits::default(),
            live_events: true,
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
    outage: Arc<Outage>,
    stopping: CancellationToken,
    runs: Arc<std::sync::atomic::AtomicU64>,
    watch: RunWatch,
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
    Deferred,
    Retried,
    GaveUp,
}

/// What became of a delivery's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Run, and its outcome stored.
    Committed,
    /// Not to be run: cancelled or finished meanwhile.
    Skipped,
    /// Not yet: its owner runs as many tasks as a user may.
    Deferred,
}

impl Worker {
    pub fn new(
        consumer: Arc<dyn QueueConsumer>,
        control: Arc<dyn TaskControl>,
        sandbox: Arc<dyn Sandbox>,
        blobs: Arc<dyn BlobStore>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            consumer,
            control,
            sandbox,
            blobs,
            config,
            outage: Arc::new(Outage::default()),
            stopping: CancellationToken::new(),
            runs: Arc::default(),
            watch: RunWatch::default(),
        }
    }

    /// Tasks this worker ran to an outcome (whether or not it could store it).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }

    /// Deliveries this worker holds through an outage right now.
    pub fn held(&self) -> usize {
        self.outage.held.load(Ordering::SeqCst)
    }

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
    /// Tasks under way when it stops are finished first; a delivery held through an
    /// outage is handed back to the broker instead.
    pub async fn run(&self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut backoff = Duration::from_millis(100);
        {
            let (stopping, shutdown) = (self.stopping.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                stopping.cancel();
            });
        }
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            // No new message while a dependency is out: it would only wait too.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                () = self.outage_cleared() => {}
            }
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
        // Wait for the tasks under way, saying what is still awaited now and then.
        let all = self.config.concurrency.max(1) as u32;
        let waiting = permits.acquire_many(all);
        tokio::pin!(waiting);
        loop {
            tokio::select! {
                _ = &mut waiting => break,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {
                    tracing::info!("stopping: still waiting for tasks under way");
                }
            }
        }
    }

    async fn handle(&self, delivery: Delivery) {
        let Delivery {
            message,
            attempt,
            deferrals,
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
            let settled = match self
                .execute_leased(&message, attempt, deferrals, settle.as_ref())
                .await
            {
                Ok(Ran::Committed) => Settled::Committed,
                Ok(Ran::Skipped) => Settled::Skipped,
                Ok(Ran::Deferred) => Settled::Deferred,
                Err(e) if self.stopping.is_cancelled() => {
                    tracing::info!(error = %e, "stopping: handing the task back");
                    Settled::Retried
                }
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
                Settled::Deferred => settle.defer(DEFER_FOR).await,
                Settled::Committed | Settled::Skipped | Settled::GaveUp => settle.ack().await,
            };
            if let Err(e) = result {
                // The broker delivers it again; the commit is idempotent.
                tracing::warn!(error = %e, ?settled, "settling the message failed");
            }
            tracing::debug!(?settled, "message settled");
            if settled == Settled::Deferred {
                metrics::counter!("codebox_tasks_deferred_total").increment(1);
                tokio::time::sleep(DEFER_PAUSE).await;
            }
        }
        .instrument(span)
        .await;
    }
}

/// `pause` give or take a quarter, so held workers do not retry in step.
fn jitter(pause: Duration) -> Duration {
    let quarter = pause / 4;
    let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX).max(1);
    pause - quarter + Duration::from_nanos((uuid::Uuid::new_v4().as_u128() as u64) % (2 * nanos))
}

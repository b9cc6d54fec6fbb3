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

/// Tries of a call that fails while its dependency answers, before it counts.
const HOLD_TRIES: u32 = 2;
/// Tries of a commit that fails while the API answers, before the delivery goes back.
const COMMIT_TRIES: u32 = 8;
/// Live events a task's sandbox may be ahead of the API by before some are dropped.
const PROGRESS_BACKLOG: usize = 256;
/// Events gathered into one call to the API: for this long after the first of them...
const PROGRESS_WINDOW: Duration = Duration::from_millis(50);
/// ...or up to this many bytes of output.
const PROGRESS_BYTES: usize = 256 * 1024;
/// How long the end of a run waits for its last events to reach the API.
const PROGRESS_FLUSH: Duration = Duration::from_secs(2);
/// How often a task running on another worker is looked at again.
const LEASE_RECHECK: Duration = Duration::from_secs(1);
/// How long a deferred task's message waits before it is delivered again (its owner ran
/// as many tasks as a user may).
const DEFER_FOR: Duration = Duration::from_secs(1);
/// A slot that deferred a task rests this long before it takes the next message: while
/// one user's backlog is deferred message by message, the API is asked at most this often
/// per slot, and other users' tasks behind it are still reached within a second or two.
const DEFER_PAUSE: Duration = Duration::from_millis(20);

/// Sends a running task's live events to the API, gathered for [`PROGRESS_WINDOW`]
/// with adjacent output of one stream merged, until the sandbox drops its sender.
async fn forward_progress(
    control: Arc<dyn TaskControl>,
    id: TaskId,
    mut events: tokio::sync::mpsc::Receiver<TaskEvent>,
) {
    while let Some(first) = events.recv().await {
        let mut batch = Batch::default();
        batch.push(first);
        let window = tokio::time::sleep(PROGRESS_WINDOW);
        tokio::pin!(window);
        while batch.bytes < PROGRESS_BYTES {
            tokio::select! {
                next = events.recv() => match next {
                    Some(event) => batch.push(event),
                    None => break,
                },
                _ = &mut window => break,
            }
        }
        if let Err(e) = control.progress(id, batch.events).await {
            metrics::counter!("codebox_events_dropped_total").increment(1);
            tracing::debug!(task_id = %id, error = %e, "live events did not reach the API");
        }
    }
}

/// Events for one call, with consecutive chunks of one stream joined.
#[derive(Default)]
struct Batch {
    events: Vec<TaskEvent>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, event: TaskEvent) {
        use codebox_core::bytes::Bytes;
        match (self.events.last_mut(), event) {
            (Some(TaskEvent::Stdout { data: a }), TaskEvent::Stdout { data: b })
            | (Some(TaskEvent::Stderr { data: a }), TaskEvent::Stderr { data: b }) => {
                self.bytes += b.len();
                let mut joined = std::mem::take(a).into_vec();
                joined.extend_from_slice(b.as_bytes());
                *a = Bytes::new(joined);
            }
            (_, event) => {
                if let TaskEvent::Stdout { data } | TaskEvent::Stderr { data } = &event {
                    self.bytes += data.len();
                }
                self.events.push(event);
            }
        }
    }
}

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

/// Deliveries held through an outage. While any is held, no new message is taken.
#[derive(Default)]
struct Outage {
    held: AtomicUsize,
    cleared: Notify,
}

/// Marks one delivery as held through an outage for as long as it lives.
struct HoldGuard<'a>(&'a Outage);

impl<'a> HoldGuard<'a> {
    fn new(outage: &'a Outage) -> Self {
        outage.held.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("codebox_deliveries_held").increment(1.0);
        metrics::counter!("codebox_outage_holds_total").increment(1);
        Self(outage)
    }
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        metrics::gauge!("codebox_deliveries_held").decrement(1.0);
        if self.0.held.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.cleared.notify_waiters();
        }
    }
}

/// Why a held call gave up.
const STOPPING: &str = "the worker is stopping";
/// How long a stopping worker keeps trying to store an outcome it holds before it hands
/// the message back: inside compose's 90 s and ECS's 120 s of grace.
const OUTCOME_AFTER_STOP: Duration = Duration::from_secs(60);

/// What a hold does when the worker is told to stop.
#[derive(Clone, Copy)]
enum OnStop {
    /// Give up: the delivery goes back for another worker (nothing has run yet).
    HandBack,
    /// Keep trying: an outcome in hand is stored (a message handed back would run its
    /// task again), for up to a minute after the stop.
    KeepTrying,
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

    async fn outage_cleared(&self) {
        loop {
            let cleared = self.outage.cleared.notified();
            if self.outage.held.load(Ordering::SeqCst) == 0 {
                return;
            }
            // The timeout covers a wake-up that raced the check above.
            let _ = tokio::time::timeout(Duration::from_millis(500), cleared).await;
        }
    }

    /// Runs `op` until it succeeds or fails for a reason of the task's own. A transient
    /// failure while `probe` fails too is an outage: the call is retried with backoff,
    /// without limit, and the worker takes no new message meanwhile. A transient failure
    /// while the probe answers is tried again up to `tries` times in all (the dependency
    /// may just have come back), then counts. Gives up with `Unavailable` when the worker
    /// stops.
    async fn hold<T, Op, OpFut, Probe, ProbeFut>(
        &self,
        what: &'static str,
        tries: u32,
        mut op: Op,
        probe: Probe,
        on_stop: OnStop,
    ) -> Result<T, Error>
    where
        Op: FnMut() -> OpFut,
        OpFut: Future<Output = Result<T, Error>>,
        Probe: Fn() -> ProbeFut,
        ProbeFut: Future<Output = Result<(), Error>>,
    {
        let (first, longest) = self.config.hold_backoff;
        let mut pause = first;
        let mut strikes = 0;
        let mut held: Option<HoldGuard<'_>> = None;
        let mut stopped_at: Option<tokio::time::Instant> = None;
        loop {
            let e = match op().await {
                Ok(v) => {
                    if held.is_some() {
                        tracing::info!(what, "back: the held task goes on");
                    }
                    return Ok(v);
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            match probe().await {
                Ok(()) => {
                    strikes += 1;
                    if strikes >= tries {
                        return Err(e);
                    }
                }
                Err(probe_error) => {
                    strikes = 0;
                    if held.is_none() {
                        tracing::warn!(what, error = %e, probe = %probe_error,
                            "unavailable: holding the task until it is back");
                        held = Some(HoldGuard::new(&self.outage));
                    }
                }
            }
            let stopped = match on_stop {
                OnStop::HandBack => self.stopping.clone(),
                // An outcome is kept trying for a while after the stop (less than an
                // orchestrator's grace), then handed back, so the worker still ends
                // cleanly, its sandboxes removed.
                OnStop::KeepTrying if self.stopping.is_cancelled() => {
                    let since = *stopped_at.get_or_insert_with(tokio::time::Instant::now);
                    let token = CancellationToken::new();
                    if since.elapsed() >= OUTCOME_AFTER_STOP {
                        token.cancel();
                    }
                    token
                }
                OnStop::KeepTrying => CancellationToken::new(),
            };
            tokio::select! {
                _ = stopped.cancelled() => return Err(Error::Unavailable(STOPPING.into())),
                _ = tokio::time::sleep(jitter(pause)) => {}
            }
            pause = (pause * 2).min(longest);
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
                .execute_leased(&message, deferrals, settle.as_ref())
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

    /// `execute`, keeping the delivery with this worker while it runs.
    async fn execute_leased(
        &self,
        message: &TaskMessage,
        deferrals: u32,
        settle: &dyn Settle,
    ) -> Result<Ran, Error> {
        let Some(lease) = self.config.lease else {
            return self.execute(message, deferrals).await;
        };
        let work = self.execute(message, deferrals);
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

    /// Runs the task and commits its outcome, unless it is not to be run (cancelled or
    /// finished meanwhile) or not yet. `Err`: a platform failure worth another delivery.
    async fn execute(&self, message: &TaskMessage, deferrals: u32) -> Result<Ran, Error> {
        if let Err(e) = codebox_core::tasks::check_spec(&message.spec) {
            // Not made by the API (forged, or corrupted on the way): never run it.
            tracing::error!(error = %e, "a message outside the API's bounds; not running it");
            metrics::counter!("codebox_messages_refused_total").increment(1);
            self.commit(Commit {
                task_id: message.task_id,
                status: TaskStatus::Failed,
                result: TaskResult::without_output(
                    message.spec.kind(),
                    Verdict::InternalError,
                    Some(format!("the task's message was refused: {e}")),
                ),
                notify: message.spec.webhook().is_some(),
            })
            .await?;
            return Ok(Ran::Committed);
        }
        let id = message.task_id;
        // This delivery's run: its lease is told apart from another delivery's.
        let holder = uuid::Uuid::new_v4();
        let lease = crate::stages::Timer::start("lease");
        match self.take_lease(id, holder, deferrals).await {
            Ok(StartDecision::Run) => lease.done(),
            Ok(StartDecision::Defer) => return Ok(Ran::Deferred),
            Ok(StartDecision::Skip | StartDecision::Leased) => return Ok(Ran::Skipped),
            Err(e) => {
                // A start the API applied but whose answer was lost (the gateway died
                // mid-request) holds a lease for this delivery: give it up, so the next
                // delivery need not wait 30 s for it to lapse while deliveries are spent.
                // Only this delivery's own lease is released; none is a no-op.
                let release = self.control.release(id, holder);
                if !matches!(
                    tokio::time::timeout(Duration::from_secs(5), release).await,
                    Ok(Ok(()))
                ) {
                    tracing::warn!(
                        "could not give up this delivery's lease; the next waits for it to lapse"
                    );
                }
                return Err(e);
            }
        }
        // Watched for a cancel, and its lease renewed, until its outcome is stored.
        let watched = self
            .watch
            .watch(id, holder, self.control.clone(), self.config.cancel_poll);
        let done = self.run_and_commit(message, watched.token.clone()).await;
        drop(watched);
        if let Err(e) = &done {
            // The message goes back: its next delivery need not wait for this lease.
            if let Err(release) = self.control.release(id, holder).await {
                tracing::warn!(error = %e, release = %release,
                    "could not release the lease; the next delivery waits for it to lapse");
            }
        }
        done.map(|()| Ran::Committed)
    }

    /// Runs a started task and stores its outcome.
    async fn run_and_commit(
        &self,
        message: &TaskMessage,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        let (status, result) = match &message.spec {
            TaskSpec::Code(spec) => {
                let (progress, forwarder) = if self.config.live_events {
                    let (progress, events) = Progress::channel(PROGRESS_BACKLOG);
                    let control = self.control.clone();
                    let forwarder =
                        tokio::spawn(forward_progress(control, message.task_id, events));
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

    /// Starts the task under this worker's lease (`Run`), unless it is not to be run
    /// (`Skip`) or not yet (`Defer`). A task another worker runs (its message came back
    /// after a broker restart, say) is waited for, the delivery kept, until it ends
    /// (`Skip`) or its lease lapses because that worker died (`Run`: this one takes it
    /// over); `Leased` is never returned.
    async fn take_lease(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: u32,
    ) -> Result<StartDecision, Error> {
        let control = &self.control;
        let mut logged = false;
        loop {
            let decision = self
                .hold(
                    "the API",
                    HOLD_TRIES,
                    || control.start_delivery(id, holder, deferrals),
                    || control.ping(),
                    OnStop::HandBack,
                )
                .await?;
            match decision {
                StartDecision::Run => return Ok(StartDecision::Run),
                StartDecision::Skip => {
                    tracing::info!("task is cancelled or finished; skipping");
                    return Ok(StartDecision::Skip);
                }
                StartDecision::Defer => {
                    tracing::debug!("its owner runs as many tasks as a user may; deferring");
                    return Ok(StartDecision::Defer);
                }
                StartDecision::Leased => {
                    if !logged {
                        tracing::info!("task runs on another worker; waiting for its end");
                        metrics::counter!("codebox_leased_elsewhere_total").increment(1);
                        logged = true;
                    }
                    tokio::select! {
                        _ = self.stopping.cancelled() => {
                            return Err(Error::Unavailable(STOPPING.into()));
                        }
                        _ = tokio::time::sleep(jitter(LEASE_RECHECK)) => {}
                    }
                }
            }
        }
    }

    /// Stores an outcome through outages. An outcome the API refuses as invalid would be
    /// refused on every delivery: the task ends `failed` with the reason instead.
    async fn commit(&self, commit: Commit) -> Result<(), Error> {
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

    /// The sandbox run, stopped when `cancel` fires.
    async fn run_sandboxed(
        &self,
        job: &SandboxJob,
        cancel: CancellationToken,
    ) -> Result<codebox_core::domain::CodeResult, Error> {
        let sandbox = &self.sandbox;
        self.hold(
            "the container engine",
            HOLD_TRIES,
            || sandbox.run(job, cancel.clone()),
            || sandbox.ping(),
            OnStop::HandBack,
        )
        .await
    }

    async fn run_image(
        &self,
        message: &TaskMessage,
        spec: &ImageSpec,
    ) -> Result<(TaskStatus, TaskResult), Error> {
        let blobs = &self.blobs;
        let input = self
            .hold(
                "the blob store",
                HOLD_TRIES,
                || blobs.get(&spec.input_key),
                || blobs.ping(),
                OnStop::HandBack,
            )
            .await?
            .ok_or_else(|| {
                Error::Backend(anyhow::anyhow!("input blob {} is missing", spec.input_key))
            })?;
        let started = Instant::now();
        // In a child process under memory and time limits: a hostile PNG costs the child,
        // never this process.
        let output =
            match crate::filters::child::run(&self.config.filter, input, &spec.filter).await {
                Err(crate::filters::child::ChildError::Platform(e)) => {
                    return Err(Error::Backend(anyhow::anyhow!(e)));
                }
                other => other,
            };
        metrics::histogram!("codebox_sandbox_seconds", "language" => "image")
            .record(started.elapsed().as_secs_f64());
        match output {
            Ok(png) => {
                let key = codebox_core::tasks::output_key(message.task_id);
                self.hold(
                    "the blob store",
                    HOLD_TRIES,
                    || blobs.put(&key, png.clone()),
                    || blobs.ping(),
                    // The filter has run: its output is kept, as a commit is.
                    OnStop::KeepTrying,
                )
                .await?;
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

    async fn give_up(&self, message: &TaskMessage, attempts: u32) -> Result<(), Error> {
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

/// `pause` give or take a quarter, so held workers do not retry in step.
fn jitter(pause: Duration) -> Duration {
    let quarter = pause / 4;
    let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX).max(1);
    pause - quarter + Duration::from_nanos((uuid::Uuid::new_v4().as_u128() as u64) % (2 * nanos))
}

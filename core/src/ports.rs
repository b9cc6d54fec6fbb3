//! The ports: every backend (memory, PostgreSQL/Redis/RabbitMQ, DynamoDB/SQS/S3, Docker)
//! implements these traits, and every implementation passes the same suite in
//! `codebox_core::conformance` (the `conformance` feature).

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::domain::{
    CodeResult, CodeSpec, Session, Task, TaskEvent, TaskId, TaskMessage, TaskSummary, Transition,
    TransitionOutcome, User, UserId,
};
use crate::error::Result;
use crate::time::Timestamp;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// # Errors
    /// MUST return `Conflict` when the username is taken (usernames compare exactly).
    async fn create(&self, user: &User) -> Result<()>;
    async fn get_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn get(&self, id: UserId) -> Result<Option<User>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session until its `expires_at`.
    async fn put(&self, session: &Session) -> Result<()>;
    /// MUST return `None` for an unknown, revoked or expired session, even where the
    /// backend deletes expired records lazily.
    async fn get(&self, jti: &str) -> Result<Option<Session>>;
    /// Revoking an unknown session is not an error.
    async fn revoke(&self, jti: &str) -> Result<()>;

    /// Readiness: the backend answers.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// How a task was stored by [`TaskStore::create`].
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New,
    /// The owner used the same idempotency key within its window: the first task.
    Existing(Box<Task>),
    /// Nothing stored: the owner has as many tasks queued or running as it may
    /// ([`TaskStore::create_within`]).
    Held,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Summaries: a page of a list never carries a spec or a result.
    pub items: Vec<TaskSummary>,
    pub next_cursor: Option<String>,
}

/// The owner's tasks whose status is `counted`, read page by page from the listing, no
/// further than `at_most`: what a store without a cheaper count does.
async fn count_listed<S: TaskStore + ?Sized>(
    store: &S,
    owner: UserId,
    at_most: usize,
    counted: impl Fn(crate::domain::TaskStatus) -> bool + Send,
) -> Result<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_by_owner(owner, 100, cursor.as_deref()).await?;
        count += page.items.iter().filter(|t| counted(t.status)).count();
        match page.next_cursor {
            Some(next) if count < at_most => cursor = Some(next),
            _ => return Ok(count.min(at_most)),
        }
    }
}

/// [`TaskStore::create_within`] as two calls: the owner's active count, then the create.
pub async fn count_then_create<S: TaskStore + ?Sized>(
    store: &S,
    task: &Task,
    idempotency_key: Option<&str>,
    key_since: Timestamp,
    active_below: usize,
) -> Result<Created> {
    if store.count_active(task.owner, active_below).await? >= active_below {
        return Ok(Created::Held);
    }
    store.create(task, idempotency_key, key_since).await
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores a new task. With an idempotency key, a task of the same owner created with
    /// the same key since `key_since` is returned instead and nothing is stored.
    ///
    /// # Errors
    /// MUST return `Conflict` when a task with this id exists.
    async fn create(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
    ) -> Result<Created>;

    /// As [`Self::create`], unless the owner has `active_below` or more tasks queued or
    /// running: then nothing is stored and the answer is [`Created::Held`]. The default
    /// counts, then creates; a store that can make the count the insert's condition does
    /// (PostgreSQL: one statement, one round trip on the submit's path). Two submits at
    /// the same moment may both pass a count of `active_below - 1`, as with any count
    /// before a write: the cap is a bound on a user's backlog, not an exact figure.
    async fn create_within(
        &self,
        task: &Task,
        idempotency_key: Option<&str>,
        key_since: Timestamp,
        active_below: usize,
    ) -> Result<Created> {
        count_then_create(self, task, idempotency_key, key_since, active_below).await
    }

    async fn get(&self, id: TaskId) -> Result<Option<Task>>;

    /// The task without its spec and result (status polling, the workers' cancel watch):
    /// a store whose reads cost by size reads less.
    async fn summary(&self, id: TaskId) -> Result<Option<TaskSummary>> {
        Ok(self.get(id).await?.map(|t| t.summary()))
    }

    /// How many of the owner's tasks are `queued` or `running`, counting no further than
    /// `at_most` (a store may stop there).
    async fn count_active(&self, owner: UserId, at_most: usize) -> Result<usize> {
        count_listed(self, owner, at_most, |s| !s.is_finished()).await
    }

    /// How many of the owner's tasks are `running`, counting no further than `at_most`.
    async fn count_running(&self, owner: UserId, at_most: usize) -> Result<usize> {
        count_listed(self, owner, at_most, |s| {
            s == crate::domain::TaskStatus::Running
        })
        .await
    }

    /// A start held to its owner's share (the running cap): `start` (a
    /// [`crate::domain::Transition::start`]) is applied unless the task is queued and its
    /// owner runs `running_below` tasks or more — then `Rejected` with the task as it is,
    /// still queued. A task running already (a lapsed lease taken over) is never held.
    /// A store that can checks and starts in one write (on every start, so on every
    /// task's path); this default reads, counts, then starts, and two starts at once may
    /// both pass the check: the cap is exceeded by starts racing, never for long.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown task.
    async fn start_within(
        &self,
        id: TaskId,
        start: &Transition,
        running_below: usize,
    ) -> Result<TransitionOutcome> {
        if let Some(t) = self.summary(id).await?
            && t.status == crate::domain::TaskStatus::Queued
            && self.count_running(t.owner, running_below).await? >= running_below
        {
            return Ok(TransitionOutcome::Rejected(t));
        }
        self.transition(id, start).await
    }

    /// The owner's tasks, newest first (`created_at`, then id, descending). The cursor is
    /// opaque to callers; an invalid cursor is `Invalid`.
    async fn list_by_owner(
        &self,
        owner: UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page>;

    /// Compare-and-set on the status: applied only when the current status is in
    /// `transition.from`; otherwise `Rejected` with the task as it is. Fields of the
    /// transition that are `None` are left as they were.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown task.
    async fn transition(&self, id: TaskId, transition: &Transition) -> Result<TransitionOutcome>;

    /// Removes a task and its idempotency key (used when it could not be queued).
    async fn delete(&self, id: TaskId) -> Result<()>;

    /// The outbox: `create` stores a task marked unpublished; this clears the mark once
    /// its message is in the queue. Clearing a missing task's mark is not an error.
    async fn mark_published(&self, id: TaskId) -> Result<()>;

    /// Tasks still marked unpublished that were created before `before` (their creator
    /// died between storing and publishing them), oldest first, at most `limit`.
    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>>;

    /// Readiness: the backend answers.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// What a [`RateLimiter`] decided about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Over the limit; the window ends in `retry_after`.
    Limited {
        retry_after: Duration,
    },
}

impl RateDecision {
    /// The decision for the `count`th event of a window that ends in `left`.
    pub fn of(count: u64, limit: u32, left: Duration) -> Self {
        if count <= u64::from(limit) {
            Self::Allowed
        } else {
            Self::Limited { retry_after: left }
        }
    }
}

/// Counts events per key in fixed windows: the state behind the limits on clients,
/// shared by every API instance (a process, or every Lambda function).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one event of `key` in the current window of length `window` and tells
    /// whether the window's count is still at most `limit`. Keys of different windows
    /// never share a count; a window's count is forgotten after it ends.
    ///
    /// # Errors
    /// `Unavailable` when the backend cannot be reached (callers let the event through:
    /// a limit must not take the API down with its store).
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision>;
}

/// The fixed window `now_ms` falls in, and how long until it ends.
pub fn window_of(now_ms: i64, window: Duration) -> (i64, Duration) {
    let len = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let index = now_ms.div_euclid(len);
    let left = (index + 1) * len - now_ms;
    (
        index,
        Duration::from_millis(u64::try_from(left).unwrap_or(0)),
    )
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Deleting a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// As `put`, recording the content type the blob is served with (where a store
    /// serves blobs itself: [`BlobStore::presigned_get`]).
    async fn put_typed(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<()> {
        self.put(key, bytes).await
    }

    /// A URL anyone holding it can GET the blob from for `ttl`; `None` where the store
    /// has no such URLs (memory, files).
    async fn presigned_get(&self, _key: &str, _ttl: Duration) -> Result<Option<String>> {
        Ok(None)
    }

    /// A URL a client may `PUT` exactly `length` bytes of `content_type` to, at `key`,
    /// for `ttl`, with the headers it must send; `None` where the store has no such URLs
    /// (the API then takes the upload itself).
    async fn presigned_put(
        &self,
        _key: &str,
        _ttl: Duration,
        _content_type: &str,
        _length: u64,
    ) -> Result<Option<PresignedPut>> {
        Ok(None)
    }

    /// As `get`, reading at most `max + 1` bytes of a blob a client wrote: `TooLarge`
    /// when it holds more than `max`.
    async fn get_at_most(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>> {
        match self.get(key).await? {
            Some(bytes) if bytes.len() > max => Err(too_large(max)),
            other => Ok(other),
        }
    }

    /// Deletes the blobs under `prefix` last written before `before`; how many, or `None`
    /// where the store expires them by itself (S3's lifecycle rules).
    async fn delete_older_than(&self, _prefix: &str, _before: Timestamp) -> Result<Option<usize>> {
        Ok(None)
    }

    /// Readiness: the store answers (a read of a key nobody writes).
    async fn ping(&self) -> Result<()> {
        self.get("health/ping").await.map(|_| ())
    }
}

/// What [`BlobStore::get_at_most`] answers for a blob over `max` bytes.
pub fn too_large(max: usize) -> crate::error::Error {
    crate::error::Error::TooLarge(format!("the blob holds more than {max} bytes"))
}

/// An upload URL of the blob store itself ([`BlobStore::presigned_put`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    /// Headers the upload must carry as they are (they are part of its signature).
    pub headers: Vec<(String, String)>,
}

#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Hands a message to the queue durably. On error nothing may be delivered later.
    ///
    /// # Errors
    /// `Unavailable` when the broker cannot be reached.
    async fn publish(&self, message: &TaskMessage) -> Result<()>;

    /// Readiness: the broker answers.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// A received message. Exactly one of `ack`, `retry` or `dead_letter` settles it; a
/// delivery dropped unsettled (a crashed worker) is delivered again by the broker.
pub struct Delivery {
    pub message: TaskMessage,
    /// 1 on the first delivery.
    pub attempt: u32,
    /// How often the message was deferred (not counted in `attempt`).
    pub deferrals: u32,
    pub settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("task_id", &self.message.task_id)
            .field("attempt", &self.attempt)
            .finish()
    }
}

#[async_trait]
pub trait Settle: Send + Sync {
    /// Done: never deliver again.
    async fn ack(self: Box<Self>) -> Result<()>;
    /// Deliver again later, counting one more attempt.
    async fn retry(self: Box<Self>) -> Result<()>;
    /// Give up: move to the dead-letter queue.
    async fn dead_letter(self: Box<Self>) -> Result<()>;
    /// Deliver again after `after` (at least; a broker may round up to its own unit),
    /// behind the messages queued meanwhile, with this delivery not counted as an attempt.
    async fn defer(self: Box<Self>, after: Duration) -> Result<()>;
    /// Keep the message invisible to other consumers for longer (long tasks on SQS).
    async fn extend(&self, _by: Duration) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
pub trait QueueConsumer: Send + Sync {
    /// Waits up to `wait` for a message.
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>>;
}

/// The job a sandbox runs: compile (if the language needs it), then run.
#[derive(Debug, Clone)]
pub struct SandboxJob {
    pub task_id: TaskId,
    pub spec: CodeSpec,
    /// Where the run's output and each test go as they happen (live events), if anywhere.
    pub progress: Option<Progress>,
}

/// The sending end of a task's live events. Never waits: when the reader falls behind,
/// events are dropped (the result carries everything anyway).
#[derive(Debug, Clone)]
pub struct Progress(tokio::sync::mpsc::Sender<TaskEvent>);

impl Progress {
    /// A sender and its receiver, holding up to `capacity` events.
    pub fn channel(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<TaskEvent>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (Self(tx), rx)
    }

    pub fn send(&self, event: TaskEvent) {
        if self.0.try_send(event).is_err() {
            metrics::counter!("codebox_events_dropped_total").increment(1);
        }
    }
}

/// Told of each task a commit ended that asked to be told of its end (a webhook), once
/// its outcome is stored.
#[async_trait]
pub trait EndNotifier: Send + Sync {
    /// Takes the call of the task's webhook on (making it, or handing it to whatever
    /// makes it). An error means it was not taken: the commit fails and its worker tries
    /// it again, so a call is taken at least once. How the receiver answers is the
    /// notifier's own affair.
    async fn ended(&self, task: crate::domain::Task) -> Result<()>;
}

/// Live events of running tasks, from where they happen (a worker's sandbox, a status
/// change) to whichever API process serves the task's event stream. Best effort: the
/// final result is always read from the store.
///
/// The bus keeps each task's log while it runs (and [`LOG_AFTER_END`] after its end, at
/// most [`LOG_EVENTS`] events and [`LOG_BYTES`] bytes), numbering the events it keeps
/// from 1: a listener who comes late hears the log first, and one who comes back after a
/// broken stream skips what it had.
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, id: TaskId, events: &[TaskEvent]) -> Result<()>;
    /// The task's log so far, then the events of `id` published from now on (none twice),
    /// until the live stream is dropped.
    async fn subscribe(&self, id: TaskId) -> Result<Subscription>;
    /// The events of `id` published from now on, without the log (a caller waiting for
    /// the end needs no past).
    async fn listen(&self, id: TaskId) -> Result<futures::stream::BoxStream<'static, Logged>>;
    /// Whether published events reach subscribers at all (not on AWS, where API
    /// functions share no channel: their streams carry status, tests and the end only).
    fn carries(&self) -> bool {
        true
    }
}

/// Events a task's log keeps at most; later ones are heard live only.
pub const LOG_EVENTS: usize = 8192;
/// Bytes (as [`TaskEvent::weight`] counts them) a task's log keeps at most.
pub const LOG_BYTES: usize = 4 << 20;
/// How long a task's log is kept once a final status was published.
pub const LOG_AFTER_END: Duration = Duration::from_secs(60);
/// How long a task's log is kept after its last event, ended or not.
pub const LOG_IDLE: Duration = Duration::from_secs(15 * 60);

/// An event as the bus hands it out: with its number in the task's log, when the log
/// kept it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub seq: Option<u64>,
    pub event: TaskEvent,
}

/// A listener's view of a task: what was published before it came, then what comes.
pub struct Subscription {
    /// The log at the time of subscribing, in order.
    pub past: Vec<Logged>,
    /// Events published since, each after every event of `past`.
    pub live: futures::stream::BoxStream<'static, Logged>,
}

impl Subscription {
    /// Past and live events as one stream.
    pub fn all(self) -> futures::stream::BoxStream<'static, Logged> {
        use futures::StreamExt;
        Box::pin(futures::stream::iter(self.past).chain(self.live))
    }

    /// The end of the log: live events numbered up to here were in `past`.
    pub fn last_seq(&self) -> u64 {
        self.past.iter().filter_map(|l| l.seq).max().unwrap_or(0)
    }
}

/// How long a task's log is kept after these events: shorter once it has ended. A log
/// that has ended is never kept longer by a later event (output that came after the end).
pub fn log_ttl(events: &[TaskEvent]) -> Duration {
    if ends_log(events) {
        LOG_AFTER_END
    } else {
        LOG_IDLE
    }
}

/// Whether these events end their task's log: a final status is among them.
pub fn ends_log(events: &[TaskEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, TaskEvent::Status { status } if status.is_finished()))
}

/// No channel: publishing drops, subscribers hear nothing.
pub struct NoEvents;

#[async_trait]
impl EventBus for NoEvents {
    async fn publish(&self, _id: TaskId, _events: &[TaskEvent]) -> Result<()> {
        Ok(())
    }

    async fn subscribe(&self, _id: TaskId) -> Result<Subscription> {
        Ok(Subscription {
            past: Vec::new(),
            live: Box::pin(futures::stream::pending()),
        })
    }

    async fn listen(&self, _id: TaskId) -> Result<futures::stream::BoxStream<'static, Logged>> {
        Ok(Box::pin(futures::stream::pending()))
    }

    fn carries(&self) -> bool {
        false
    }
}

#[async_trait]
pub trait Sandbox: Send + Sync {
    /// Runs the job to an outcome. Cancelling the token stops it within a second with the
    /// verdict `cancelled`. Programs' failures are outcomes, not errors.
    ///
    /// # Errors
    /// Only for failures of the platform itself (the container engine is unreachable).
    async fn run(&self, job: &SandboxJob, cancel: CancellationToken) -> Result<CodeResult>;

    /// Readiness: runs can start (the container engine answers). A failing run whose
    /// sandbox still answers here is the task's own failure, not an outage.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// What the worker may do to a task: the worker's view of the API (`POST /commit` and
/// friends over HTTP, or the task service directly in the embedded profile).
#[async_trait]
pub trait TaskControl: Send + Sync {
    /// Marks the task running under `holder`'s lease (one id per delivery of its message):
    /// `Skip` when it must not run (cancelled, finished or gone), `Leased` while another
    /// run holds a live lease on it, `Defer` when it should wait behind other users'
    /// tasks (its message was deferred `deferrals` times already). Asking again with the
    /// same holder is harmless.
    async fn start_delivery(
        &self,
        id: TaskId,
        holder: crate::domain::LeaseId,
        deferrals: u32,
    ) -> Result<crate::domain::StartDecision>;
    /// [`Self::start_delivery`] for a message never deferred.
    async fn start(
        &self,
        id: TaskId,
        holder: crate::domain::LeaseId,
    ) -> Result<crate::domain::StartDecision> {
        self.start_delivery(id, holder, 0).await
    }
    /// Extends these leases (see [`crate::domain::RUN_LEASE`]); a worker renews all of its
    /// runs in one call. A lease no longer held (the task ended) is left alone.
    async fn renew(&self, leases: &[(TaskId, crate::domain::LeaseId)]) -> Result<()>;
    /// Gives up `holder`'s lease on a task whose message goes back to the queue.
    async fn release(&self, id: TaskId, holder: crate::domain::LeaseId) -> Result<()>;
    /// Which of these running tasks were cancelled meanwhile (a task gone counts as
    /// cancelled: nobody waits for its outcome): the worker's cancel watch asks once for
    /// all its tasks. No default: each implementation answers in one round trip.
    async fn cancelled_among(&self, ids: &[TaskId]) -> Result<Vec<TaskId>>;
    /// Stores the outcome; committing twice is harmless.
    async fn commit(&self, commit: &crate::domain::Commit) -> Result<()>;
    /// Hands a running task's live events (output chunks, finished tests) of its run
    /// `attempt` to the API's event bus. Best effort: a failure costs the live view, never
    /// the task.
    async fn progress(&self, id: TaskId, attempt: u32, events: Vec<TaskEvent>) -> Result<()>;

    /// Readiness: the API answers, takes this worker's credential and reaches its store.
    /// A call that fails while this succeeds is the task's own failure, not an outage.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Tells the API which language versions this worker's runner image has.
    async fn report_languages(&self, _languages: &[crate::languages::Language]) -> Result<()> {
        Ok(())
    }
}

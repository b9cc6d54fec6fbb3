//! The task service: submit, status, result, list, cancel (for users) and start, lease,
//! cancel watch and commit (for workers). Every status change is a compare-and-set in the
//! store.

use std::sync::Arc;

use async_trait::async_trait;

use super::ended::EndedHere;
use super::finished::FinishedSummaries;
use super::request::*;
use super::validate::*;
use crate::domain::{
    Commit, ImageResult, LeaseCondition, LeaseId, StartDecision, Task, TaskEvent, TaskId,
    TaskMessage, TaskResult, TaskSpec, TaskStatus, TaskSummary, Transition, TransitionOutcome,
    UserId, Verdict,
};
use crate::error::{Error, Result};
use crate::png;
use crate::ports::{
    BlobStore, Created, EndNotifier, EventBus, NoEvents, Page, TaskControl, TaskQueue, TaskStore,
};
use crate::time;

/// When a submit refused for a full backlog may be tried again (`Retry-After`).
const ACTIVE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone)]
pub struct TaskService {
    pub(super) tasks: Arc<dyn TaskStore>,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) queue: Arc<dyn TaskQueue>,
    events: Arc<dyn EventBus>,
    /// Told of the tasks that end with a webhook.
    notifier: Option<Arc<dyn EndNotifier>>,
    /// The largest PNG a request may carry inline (`image_base64`); bigger ones are
    /// uploaded first.
    inline_image_max: usize,
    /// Tasks one user may have running at once; a start past it is deferred. `None`: any.
    running_cap: Option<usize>,
    /// Tasks one user may have queued or running at once; a submit past it is refused.
    /// `None`: any.
    active_cap: Option<usize>,
    /// The finished tasks' summaries this process read, answered again without the store.
    finished: Arc<FinishedSummaries>,
    /// Ends this process stored, handed to its waiters.
    pub(super) ended: EndedHere,
}

/// A submitted task, and whether it is new or the first one of its idempotency key.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub task: Task,
    pub created: bool,
}

impl TaskService {
    pub fn new(
        tasks: Arc<dyn TaskStore>,
        blobs: Arc<dyn BlobStore>,
        queue: Arc<dyn TaskQueue>,
    ) -> Self {
        Self {
            tasks,
            blobs,
            queue,
            events: Arc::new(NoEvents),
            notifier: None,
            inline_image_max: png::MAX_BYTES,
            running_cap: None,
            active_cap: None,
            finished: Arc::default(),
            ended: EndedHere::default(),
        }
    }

    /// Fair shares (`tasks` 0: none). A user runs at most `tasks` at once, and a task
    /// of a user who runs one already is deferred once, so the tasks queued behind it —
    /// other users' — are reached first: a user with nothing running waits for a free
    /// slot, not for another user's backlog.
    pub fn with_running_cap(mut self, tasks: u32) -> Self {
        self.running_cap = (tasks > 0).then_some(tasks as usize);
        self
    }

    /// A user's backlog: at most `tasks` queued or running at once (`LIMIT_ACTIVE_TASKS`;
    /// 0: no bound); a submit past it stores nothing and is refused as too many
    /// requests. Checked by the store as it creates ([`TaskStore::create_within`]).
    pub fn with_active_cap(mut self, tasks: u32) -> Self {
        self.active_cap = (tasks > 0).then_some(tasks as usize);
        self
    }

    /// Starts a run of the task under `holder`'s lease, for a delivery deferred
    /// `deferrals` times before; `None` for a worker that knows no deferral (it would
    /// settle the message as done).
    ///
    /// # Errors
    /// A failing store.
    pub async fn start_run(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: Option<u32>,
    ) -> Result<StartDecision> {
        let start = Transition::start(holder, time::now());
        // Fair shares: a task never deferred waits while its owner runs any task, a
        // deferred one while its owner runs `cap`.
        let held_below = match (deferrals, self.running_cap) {
            (Some(0), Some(_)) => Some(1),
            (Some(_), Some(cap)) => Some(cap),
            _ => None,
        };
        let outcome = match held_below {
            Some(below) => self.tasks.start_within(id, &start, below).await,
            None => self.tasks.transition(id, &start).await,
        };
        match outcome {
            Ok(TransitionOutcome::Applied(_)) => {
                self.announce(id, TaskStatus::Running).await;
                Ok(StartDecision::Run)
            }
            // Held to its owner's share: a start rejects a queued task for nothing else.
            Ok(TransitionOutcome::Rejected(t)) if t.status == TaskStatus::Queued => {
                metrics::counter!("codebox_starts_deferred_total").increment(1);
                Ok(StartDecision::Defer)
            }
            // Running under another run's live lease.
            Ok(TransitionOutcome::Rejected(t)) if t.status == TaskStatus::Running => {
                Ok(StartDecision::Leased)
            }
            Ok(TransitionOutcome::Rejected(_)) | Err(Error::NotFound(_)) => Ok(StartDecision::Skip),
            Err(e) => Err(e),
        }
    }

    /// Refuses inline images (`image_base64`) above `bytes` with `TooLarge`, pointing to
    /// uploads: where a request must fit a smaller envelope than the API's own limit
    /// (a Lambda invocation carries 6 MB).
    pub fn with_inline_image_limit(mut self, bytes: usize) -> Self {
        self.inline_image_max = bytes.min(png::MAX_BYTES);
        self
    }

    pub fn inline_image_max(&self) -> usize {
        self.inline_image_max
    }

    /// Tasks that end with a webhook are handed to `notifier` once their outcome is stored.
    pub fn with_notifier(mut self, notifier: Arc<dyn EndNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Live events go through `events` (status changes from here, workers' output).
    pub fn with_events(mut self, events: Arc<dyn EventBus>) -> Self {
        self.events = events;
        self
    }

    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// Tells the task's listeners its new status; best effort.
    async fn announce(&self, id: TaskId, status: TaskStatus) {
        if let Err(e) = self
            .events
            .publish(id, &[TaskEvent::Status { status }])
            .await
        {
            tracing::debug!(task_id = %id, error = %e, "a status event was not published");
        }
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.tasks
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Readiness of the task store and the queue, each named when it fails.
    /// What a worker needs to store outcomes: the task store answers.
    pub async fn ping_store(&self) -> Result<()> {
        self.tasks.ping().await
    }

    pub async fn ping(&self) -> std::result::Result<(), (&'static str, Error)> {
        self.tasks.ping().await.map_err(|e| ("store", e))?;
        self.queue.ping().await.map_err(|e| ("queue", e))?;
        self.blobs.ping().await.map_err(|e| ("blob store", e))?;
        Ok(())
    }

    /// Stores the task durably, then publishes it. If publishing fails the task is
    /// removed again and the caller gets `Unavailable`: nothing is left half-made.
    pub async fn submit(
        &self,
        owner: UserId,
        request: SubmitRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Submitted> {
        if let Some(key) = idempotency_key {
            validate_idempotency_key(key)?;
        }
        let (spec, image) = validate(request, self.inline_image_max)?;
        let task = Task::new(owner, spec);
        if let (Some(image), TaskSpec::Image(img)) = (image, &task.spec) {
            // An image is copied before the task is stored: over the cap, the copy is not
            // made at all (the insert below still holds the cap against a racing submit).
            if let Some(cap) = self.active_cap
                && self.tasks.count_active(owner, cap).await? >= cap
            {
                return Err(active_limited(cap));
            }
            // The task gets a copy of its own: an upload may be written again while its
            // URL lasts, and the worker must read the PNG that was checked here.
            let bytes = match image {
                ImageInput::Inline(bytes) => bytes,
                ImageInput::Uploaded(key) => self.uploaded(owner, &key).await?,
            };
            self.blobs.put(&img.input_key, bytes).await?;
        }
        let key_since = time::now() - chrono::Duration::hours(24);
        let created = match self.active_cap {
            Some(cap) => {
                self.tasks
                    .create_within(&task, idempotency_key, key_since, cap)
                    .await
            }
            None => self.tasks.create(&task, idempotency_key, key_since).await,
        };
        match created {
            Ok(Created::New) => {}
            Ok(Created::Held) => {
                self.drop_input(&task).await;
                return Err(active_limited(self.active_cap.unwrap_or_default()));
            }
            Ok(Created::Existing(first)) => {
                self.drop_input(&task).await;
                return Ok(Submitted {
                    task: *first,
                    created: false,
                });
            }
            Err(e) => {
                self.drop_input(&task).await;
                return Err(e);
            }
        }
        let message = TaskMessage {
            task_id: task.id,
            spec: task.spec.clone(),
            enqueued_at: time::now(),
        };
        if let Err(e) = self.queue.publish(&message).await {
            tracing::warn!(task_id = %task.id, error = %e, "publishing failed; removing the task");
            if let Err(e) = self.tasks.delete(task.id).await {
                tracing::error!(task_id = %task.id, error = %e, "could not remove an unqueued task");
            }
            self.drop_input(&task).await;
            return Err(Error::Unavailable("the task queue".into()));
        }
        // Out of the outbox. Should this write fail, the sweeper publishes the task a
        // second time: a duplicate delivery, which the worker's start makes harmless.
        if let Err(e) = self.tasks.mark_published(task.id).await {
            tracing::warn!(task_id = %task.id, error = %e, "could not mark a task published");
        }
        Ok(Submitted {
            task,
            created: true,
        })
    }

    async fn drop_input(&self, task: &Task) {
        if let TaskSpec::Image(img) = &task.spec
            && let Err(e) = self.blobs.delete(&img.input_key).await
        {
            tracing::warn!(task_id = %task.id, error = %e, "could not delete an input blob");
        }
    }

    /// The caller's task; another user's task is `NotFound`, as if it did not exist.
    pub async fn get(&self, owner: UserId, id: TaskId) -> Result<Task> {
        match self.tasks.get(id).await? {
            Some(t) if t.owner == owner => Ok(t),
            _ => Err(not_found(id)),
        }
    }

    /// The caller's task without spec and result: what `GET /status` shows. A finished
    /// task's summary is read from the store once per [`super::finished::KEPT`].
    pub async fn summary(&self, owner: UserId, id: TaskId) -> Result<TaskSummary> {
        let summary = match self.finished.get(id) {
            Some(kept) => Some(kept),
            None => self
                .tasks
                .summary(id)
                .await?
                .inspect(|t| self.finished.keep(t)),
        };
        match summary {
            Some(t) if t.owner == owner => Ok(t),
            _ => Err(not_found(id)),
        }
    }

    /// Any task's status, for workers (no owner check: the worker credential is trusted).
    pub async fn status_of(&self, id: TaskId) -> Result<TaskStatus> {
        self.tasks
            .summary(id)
            .await?
            .map(|t| t.status)
            .ok_or_else(|| not_found(id))
    }

    /// An ended task whose webhook is due (the `webhooks` function, told by its queue; no
    /// owner check: the queue's messages come from `commit`): `None` when it is gone, has
    /// not ended, or asked for no webhook.
    pub async fn webhook_due(&self, id: TaskId) -> Result<Option<Task>> {
        Ok(self
            .tasks
            .get(id)
            .await?
            .filter(|t| t.status.is_finished() && t.spec.webhook().is_some()))
    }

    /// The caller's finished task; `Conflict` naming the status while it is not finished.
    pub async fn result(&self, owner: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(owner, id).await?;
        if !task.status.is_finished() {
            return Err(Error::Conflict(format!(
                "task {id} is {}; its result is not ready",
                task.status
            )));
        }
        Ok(task)
    }

    /// The output PNG of a finished image task.
    pub async fn image_output(&self, task: &Task) -> Result<Option<Vec<u8>>> {
        match &task.result {
            Some(TaskResult::Image(r)) => match &r.output_key {
                Some(key) => self.blobs.get(key).await,
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    pub async fn list(&self, owner: UserId, limit: usize, cursor: Option<&str>) -> Result<Page> {
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(Error::Invalid(format!(
                "limit must be 1 to {MAX_LIST_LIMIT}"
            )));
        }
        self.tasks.list_by_owner(owner, limit, cursor).await
    }

    /// A queued task never runs; a running one is stopped by its worker. Either way it
    /// ends `cancelled`. A finished task is a `Conflict`.
    pub async fn cancel(&self, owner: UserId, id: TaskId) -> Result<TaskSummary> {
        let task = self.get(owner, id).await?;
        let transition = Transition {
            from: vec![TaskStatus::Queued, TaskStatus::Running],
            to: TaskStatus::Cancelled,
            started_at: None,
            finished_at: Some(time::now()),
            result: Some(TaskResult::without_output(
                task.kind(),
                Verdict::Cancelled,
                None,
            )),
            lease: None,
            lease_condition: LeaseCondition::Any,
            kind: None,
            first_started_at: None,
        };
        match self.tasks.transition(id, &transition).await? {
            TransitionOutcome::Applied(t) => {
                self.announce(id, t.status).await;
                Ok(t)
            }
            TransitionOutcome::Rejected(t) => Err(Error::Conflict(format!(
                "task {id} is already {}",
                t.status
            ))),
        }
    }

    /// Stores a worker's outcome and returns the task's status after it. The first
    /// outcome stands; a commit for a finished or cancelled task is accepted and ignored
    /// (but for the webhook of its own outcome, handed on again: see `notify_end`).
    pub async fn commit(&self, commit: &Commit) -> Result<TaskStatus> {
        if !matches!(commit.status, TaskStatus::Completed | TaskStatus::Failed) {
            return Err(Error::Invalid(
                "a commit's status is completed or failed".into(),
            ));
        }
        // An image's output lives at a key of its own task: a worker credential cannot
        // point a result at another blob (another user's input, say).
        if let TaskResult::Image(ImageResult {
            output_key: Some(key),
            ..
        }) = &commit.result
            && *key != output_key(commit.task_id)
        {
            return Err(Error::Invalid(format!(
                "an image result's output_key is {}",
                output_key(commit.task_id)
            )));
        }
        // One conditional write, which checks the kind and fills a missing start
        // itself; a rejection tells why by the summary it returns.
        let transition = Transition::finish(commit.status, commit.result.clone(), time::now());
        Ok(
            match self.tasks.transition(commit.task_id, &transition).await? {
                TransitionOutcome::Applied(t) => {
                    tracing::debug!(task_id = %t.id, status = %t.status, "committed");
                    self.ended.tell(&t, &commit.result);
                    self.announce(t.id, t.status).await;
                    if commit.notify {
                        self.notify_end(t.id, None).await?;
                    }
                    t.status
                }
                TransitionOutcome::Rejected(t) if t.kind != commit.result.kind() => {
                    return Err(Error::Invalid(
                        "the result's kind does not match the task's".into(),
                    ));
                }
                TransitionOutcome::Rejected(t) => {
                    tracing::info!(task_id = %t.id, status = %t.status, "commit ignored: task already finished");
                    // A worker trying its commit again, whose first try stored this very
                    // outcome and then failed to hand the webhook on: it is handed on now.
                    if commit.notify && t.status == commit.status {
                        self.notify_end(t.id, Some(&commit.result)).await?;
                    }
                    t.status
                }
            },
        )
    }

    /// Hands the ended task `id`'s webhook to the notifier — when the task has one, and
    /// (`stored`) only when its stored outcome is that one. A failure fails the commit,
    /// whose worker tries it again: the call is handed on at least once, never lost.
    async fn notify_end(&self, id: TaskId, stored: Option<&TaskResult>) -> Result<()> {
        let Some(notifier) = &self.notifier else {
            return Ok(());
        };
        let Some(task) = self.tasks.get(id).await? else {
            return Ok(());
        };
        if task.spec.webhook().is_none() || stored.is_some_and(|r| task.result.as_ref() != Some(r))
        {
            return Ok(());
        }
        notifier.ended(task).await.map_err(|e| {
            tracing::warn!(task_id = %id, error = %e, "webhook not handed on; the commit is to be tried again");
            Error::Unavailable(format!("the webhook of task {id} was not handed on: {e}"))
        })
    }
}

#[async_trait]
impl TaskControl for TaskService {
    async fn start_delivery(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: u32,
    ) -> Result<StartDecision> {
        self.start_run(id, holder, Some(deferrals)).await
    }

    async fn renew(&self, leases: &[(TaskId, LeaseId)]) -> Result<()> {
        let now = time::now();
        let mut failed = None;
        // Every lease is tried: one store error costs that lease's renewal alone.
        for &(id, holder) in leases {
            if let Err(e) = self.lease(id, &Transition::renew(holder, now)).await {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    async fn release(&self, id: TaskId, holder: LeaseId) -> Result<()> {
        self.lease(id, &Transition::release(holder, time::now()))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.tasks.ping().await
    }

    /// A task gone counts as cancelled: nobody waits for its outcome.
    async fn cancelled_among(&self, ids: &[TaskId]) -> Result<Vec<TaskId>> {
        let mut cancelled = Vec::new();
        for &id in ids {
            match self.tasks.summary(id).await? {
                Some(t) if t.status != TaskStatus::Cancelled => {}
                _ => cancelled.push(id),
            }
        }
        Ok(cancelled)
    }

    async fn commit(&self, commit: &Commit) -> Result<()> {
        TaskService::commit(self, commit).await.map(|_| ())
    }

    async fn progress(&self, id: TaskId, attempt: u32, events: Vec<TaskEvent>) -> Result<()> {
        let mut batch = Vec::with_capacity(events.len() + 1);
        batch.push(TaskEvent::Attempt { attempt });
        batch.extend(events);
        self.events.publish(id, &batch).await
    }
}

impl TaskService {
    /// A lease change; a task finished, cancelled or gone meanwhile has none to change.
    async fn lease(&self, id: TaskId, change: &Transition) -> Result<()> {
        match self.tasks.transition(id, change).await {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Where an image task's output PNG is stored.
pub fn output_key(id: TaskId) -> String {
    format!("output/{id}.png")
}

fn not_found(id: TaskId) -> Error {
    Error::NotFound(format!("task {id} not found"))
}

/// A submit over its owner's cap on tasks under way.
fn active_limited(cap: usize) -> Error {
    metrics::counter!("codebox_limited_total", "limit" => "active").increment(1);
    Error::RateLimited(
        format!("at most {cap} of your tasks may be queued or running at once"),
        ACTIVE_RETRY,
    )
}

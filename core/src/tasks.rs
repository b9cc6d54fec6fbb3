//! Tasks: submit, status, result, list, cancel (for users) and start, cancel watch and
//! commit (for workers). Every status change is a compare-and-set in the store.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{
    CodeSpec, Commit, Compare, CompareMode, Compiler, Filter, ImageResult, ImageSpec,
    LeaseCondition, LeaseId, Limits, StartDecision, Task, TaskEvent, TaskId, TaskKind, TaskMessage,
    TaskResult, TaskSpec, TaskStatus, TaskSummary, TestCase, Transition, TransitionOutcome, UserId,
    Verdict,
};
use crate::error::{Error, Result};
use crate::languages;
use crate::png;
use crate::ports::{
    BlobStore, Created, EventBus, NoEvents, Page, TaskControl, TaskQueue, TaskStore,
};
use crate::time;

pub const MAX_CODE_BYTES: usize = 128 * 1024;
pub const MAX_STDIN_BYTES: usize = 1024 * 1024;
pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_BYTES: usize = 4096;
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
pub const MAX_LIST_LIMIT: usize = 100;
pub const MAX_TESTS: usize = 64;
pub const MAX_EXPECTED_BYTES: usize = 1024 * 1024;
pub const SIGMA_RANGE: std::ops::RangeInclusive<f32> = 0.1..=50.0;
/// [`SIGMA_RANGE`] as a request writes it (`0.1_f32` widened is above `0.1`).
const SIGMA_REQUEST_RANGE: std::ops::RangeInclusive<f64> = 0.1..=50.0;

/// The body of `POST /task`: one flat shape for both kinds, checked by [`TaskService::submit`].
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// `code` (default) or `image`.
    pub kind: Option<TaskKind>,
    /// Code tasks: an id from `GET /languages`.
    #[schema(example = "python")]
    pub language: Option<String>,
    #[schema(example = "print(input())")]
    pub code: Option<String>,
    #[schema(example = "hi")]
    pub stdin: Option<String>,
    pub args: Option<Vec<String>>,
    /// For `c` and `cpp`: `gcc` (default) or `clang`.
    pub compiler: Option<Compiler>,
    #[serde(default, deserialize_with = "object")]
    pub limits: Option<LimitsRequest>,
    /// Image tasks: the PNG, base64-encoded.
    pub image_base64: Option<String>,
    /// Image tasks, instead of `image_base64`: the key of a PNG uploaded through
    /// `POST /task/upload`.
    pub image_key: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub filter: Option<FilterRequest>,
    /// Code tasks: 1–64 test cases (then no top-level `stdin` or `args`). Never null.
    #[serde(default, deserialize_with = "not_null")]
    pub tests: Option<Vec<TestRequest>>,
    /// With `tests` only (null there = the default, `lines`): how output is compared.
    /// `Some(None)` for an explicit null.
    #[serde(default, deserialize_with = "present_object")]
    pub compare: Option<Option<CompareRequest>>,
    /// With `tests` only (null there = false): stop at the first test that fails.
    #[serde(default, deserialize_with = "present")]
    pub stop_on_failure: Option<Option<bool>>,
}

/// A field that may be left out but, when given, is not null.
fn not_null<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// [`present`] for a nested object (see [`object`]).
fn present_object<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    object(d).map(Some)
}

/// One test case of `POST /task`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// At most 1 MiB.
    pub stdin: Option<String>,
    /// At most 1 MiB.
    pub expected_stdout: Option<String>,
    pub args: Option<Vec<String>>,
}

/// How a test's output is compared with its expected output.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub mode: Option<CompareMode>,
    /// `tokens` only: numbers within this absolute difference are equal (≥ 0).
    pub abs_tol: Option<f64>,
    /// `tokens` only: numbers within this difference relative to the expected one are
    /// equal (≥ 0).
    pub rel_tol: Option<f64>,
}

/// A nested JSON object, and only an object: serde would also take an array of the
/// fields' values in order (`"limits": [1000, 64]`), which the document does not allow.
fn object<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!("expected an object, not {other}"))),
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// 1–20000, default 5000.
    #[schema(minimum = 1, maximum = 20000)]
    #[serde(default, deserialize_with = "whole_number")]
    pub time_ms: Option<u32>,
    /// 16–1024, default 256.
    #[schema(minimum = 16, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub memory_mb: Option<u32>,
    /// Per stream, 1–1024, default 64.
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub output_kb: Option<u32>,
    /// The program's stack, 1–1024, default 64.
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub stack_mb: Option<u32>,
}

/// A whole number as JSON may write it: `3000` or `3000.0` (JSON Schema's `integer`
/// takes both, and so do clients that only have floating point numbers).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return u32::try_from(u)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is out of range")));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            Ok(Some(f as u32))
        }
        _ => Err(D::Error::custom(format!("{n} is not a whole number"))),
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// `sharpen`, `blur`, `negative` or `flipx`.
    #[schema(example = "blur", value_type = FilterName)]
    pub name: String,
    #[serde(default, deserialize_with = "object")]
    pub parameters: Option<FilterParameters>,
}

/// The filters, by name (for the document; requests carry the name as a string).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterName {
    Sharpen,
    Blur,
    Negative,
    Flipx,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterParameters {
    /// For `blur` and `sharpen`: 0.1–50, default 1.0 (also when null). `negative` and
    /// `flipx` take no parameters: `sigma` given to them at all, null included, is refused.
    /// Compared as written (a double), so 50.0000001 is out of range even though it
    /// rounds to 50 as a float.
    #[schema(minimum = 0.1, maximum = 50.0, value_type = Option<f64>)]
    #[serde(default, deserialize_with = "present")]
    pub sigma: Option<Option<f64>>,
}

/// A field that is there, null or not (`Some(None)` for an explicit null), told apart
/// from one left out (`None`, through `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// How old a task still in the outbox must be before the sweeper publishes it: its
/// creator's request has ended by then (a function times out within 30 s, and its SDK
/// calls well before).
pub const SWEEP_AFTER: chrono::Duration = chrono::Duration::minutes(1);
/// Tasks the sweeper publishes per round at most.
pub const SWEEP_BATCH: usize = 100;

#[derive(Clone)]
pub struct TaskService {
    tasks: Arc<dyn TaskStore>,
    blobs: Arc<dyn BlobStore>,
    queue: Arc<dyn TaskQueue>,
    events: Arc<dyn EventBus>,
    /// The largest PNG a request may carry inline (`image_base64`); bigger ones are
    /// uploaded first.
    inline_image_max: usize,
}

/// How long an upload URL of `POST /task/upload` works.
pub const UPLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Where uploads are kept: a day (on AWS by the bucket's lifecycle, elsewhere by
/// [`TaskService::expire_uploads`]); an image task copies its upload when it is submitted.
pub const UPLOADS: &str = "uploads/";
/// How long an upload is kept.
pub const UPLOAD_KEPT: chrono::Duration = chrono::Duration::days(1);

/// Where `owner`'s uploads are kept.
pub fn upload_prefix(owner: UserId) -> String {
    format!("{UPLOADS}{owner}/")
}

/// A new upload's key.
pub fn upload_key(owner: UserId) -> String {
    format!("{}{}.png", upload_prefix(owner), Uuid::new_v4())
}

/// Where an image task's PNG comes from.
enum ImageInput {
    Inline(Vec<u8>),
    Uploaded(String),
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
            inline_image_max: png::MAX_BYTES,
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
            // The task gets a copy of its own: an upload may be written again while its
            // URL lasts, and the worker must read the PNG that was checked here.
            let bytes = match image {
                ImageInput::Inline(bytes) => bytes,
                ImageInput::Uploaded(key) => self.uploaded(owner, &key).await?,
            };
            self.blobs.put(&img.input_key, bytes).await?;
        }
        let key_since = time::now() - chrono::Duration::hours(24);
        match self.tasks.create(&task, idempotency_key, key_since).await {
            Ok(Created::New) => {}
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

    /// Runs [`TaskService::sweep`] every `every` until `stop`, for tasks older than
    /// [`SWEEP_AFTER`] (the gateway; on AWS the `sweep` function, once a minute).
    pub async fn sweep_forever(
        &self,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.sweep(SWEEP_AFTER, SWEEP_BATCH).await {
                tracing::warn!(error = %e, "sweeping the outbox failed; trying again later");
            }
        }
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

    /// Deletes uploads written more than `kept` ago, where the blob store does not expire
    /// them by itself; how many.
    pub async fn expire_uploads(&self, kept: chrono::Duration) -> Result<usize> {
        let deleted = self
            .blobs
            .delete_older_than(UPLOADS, time::now() - kept)
            .await?
            .unwrap_or(0);
        if deleted > 0 {
            tracing::info!(deleted, "expired uploads deleted");
        }
        Ok(deleted)
    }

    /// Runs [`TaskService::expire_uploads`] for [`UPLOAD_KEPT`] now and every `every`
    /// until `stop`.
    pub async fn expire_uploads_forever(
        &self,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            if let Err(e) = self.expire_uploads(UPLOAD_KEPT).await {
                tracing::warn!(error = %e, "deleting expired uploads failed; trying again later");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The checked PNG `owner` uploaded at `key`.
    async fn uploaded(&self, owner: UserId, key: &str) -> Result<Vec<u8>> {
        let name = key.strip_prefix(&upload_prefix(owner)).unwrap_or_default();
        let well_formed = name
            .strip_suffix(".png")
            .is_some_and(|id| Uuid::parse_str(id).is_ok());
        if !well_formed {
            return Err(Error::Invalid(
                "image_key is not one of your uploads (POST /task/upload gives one)".into(),
            ));
        }
        let bytes = match self.blobs.get_at_most(key, png::MAX_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(Error::Invalid(
                    "nothing was uploaded at image_key, or the upload has expired".into(),
                ));
            }
            Err(Error::TooLarge(_)) => {
                return Err(Error::TooLarge(format!(
                    "the uploaded image is larger than {} bytes",
                    png::MAX_BYTES
                )));
            }
            Err(e) => return Err(e),
        };
        png::check(&bytes)?;
        Ok(bytes)
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

    /// The caller's task without spec and result: what `GET /status` shows.
    pub async fn summary(&self, owner: UserId, id: TaskId) -> Result<TaskSummary> {
        match self.tasks.summary(id).await? {
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

    /// Stores a worker's outcome. The first outcome stands; a commit for a finished or
    /// cancelled task is accepted and ignored.
    pub async fn commit(&self, commit: &Commit) -> Result<()> {
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
        // The summary (no spec, no result, no blob read), then one conditional write.
        let task = self
            .tasks
            .summary(commit.task_id)
            .await?
            .ok_or_else(|| not_found(commit.task_id))?;
        let kind_matches = matches!(
            (task.kind, &commit.result),
            (TaskKind::Code, TaskResult::Code(_)) | (TaskKind::Image, TaskResult::Image(_))
        );
        if !kind_matches {
            return Err(Error::Invalid(
                "the result's kind does not match the task's".into(),
            ));
        }
        let now = time::now();
        let mut transition = Transition::finish(commit.status, commit.result.clone(), now);
        if task.started_at.is_none() {
            transition.started_at = Some(now);
        }
        match self.tasks.transition(commit.task_id, &transition).await? {
            TransitionOutcome::Applied(t) => {
                tracing::debug!(task_id = %t.id, status = %t.status, "committed");
                self.announce(t.id, t.status).await;
            }
            TransitionOutcome::Rejected(t) => {
                tracing::info!(task_id = %t.id, status = %t.status, "commit ignored: task already finished");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TaskControl for TaskService {
    async fn start(&self, id: TaskId, holder: LeaseId) -> Result<StartDecision> {
        match self
            .tasks
            .transition(id, &Transition::start(holder, time::now()))
            .await
        {
            Ok(TransitionOutcome::Applied(_)) => {
                self.announce(id, TaskStatus::Running).await;
                Ok(StartDecision::Run)
            }
            // Running under another run's live lease.
            Ok(TransitionOutcome::Rejected(t)) if t.status == TaskStatus::Running => {
                Ok(StartDecision::Leased)
            }
            Ok(TransitionOutcome::Rejected(_)) | Err(Error::NotFound(_)) => Ok(StartDecision::Skip),
            Err(e) => Err(e),
        }
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
        TaskService::commit(self, commit).await
    }

    async fn progress(&self, id: TaskId, events: Vec<TaskEvent>) -> Result<()> {
        self.events.publish(id, &events).await
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

fn validate_idempotency_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )))
    }
}

/// Turns a request into a spec, and for images also returns where the PNG comes from
/// (inline ones decoded and checked).
fn validate(req: SubmitRequest, inline_max: usize) -> Result<(TaskSpec, Option<ImageInput>)> {
    match req.kind.unwrap_or(TaskKind::Code) {
        TaskKind::Code => {
            if req.image_base64.is_some() || req.image_key.is_some() || req.filter.is_some() {
                return Err(Error::Invalid(
                    "image_base64, image_key and filter belong to image tasks".into(),
                ));
            }
            Ok((TaskSpec::Code(validate_code(req)?), None))
        }
        TaskKind::Image => {
            if req.language.is_some()
                || req.code.is_some()
                || req.stdin.is_some()
                || req.args.is_some()
                || req.compiler.is_some()
                || req.limits.is_some()
                || req.tests.is_some()
                || req.compare.is_some()
                || req.stop_on_failure.is_some()
            {
                return Err(Error::Invalid(
                    "language, code, stdin, args, compiler, limits, tests, compare and stop_on_failure belong to code tasks".into(),
                ));
            }
            let (spec, input) = validate_image(req, inline_max)?;
            Ok((TaskSpec::Image(spec), Some(input)))
        }
    }
}

fn validate_code(req: SubmitRequest) -> Result<CodeSpec> {
    let language = req.language.ok_or_else(|| {
        Error::Invalid(format!("language is required: one of {}", languages::ids()))
    })?;
    let def = languages::find(&language).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown language {language:?}: one of {}",
            languages::ids()
        ))
    })?;
    let compilers = def.compilers();
    let compiler = match (req.compiler, compilers.first()) {
        (None, default) => default.copied(),
        (Some(c), Some(_)) if compilers.contains(&c) => Some(c),
        (Some(c), Some(_)) => {
            return Err(Error::Invalid(format!(
                "compiler {} is not available for {language}",
                c.as_str()
            )));
        }
        (Some(_), None) => {
            return Err(Error::Invalid(format!(
                "{language} has no choice of compiler; leave compiler out"
            )));
        }
    };
    let code = req
        .code
        .ok_or_else(|| Error::Invalid("code is required".into()))?;
    let (tests, compare, stop_on_failure) = match req.tests {
        Some(tests) => {
            if req.stdin.is_some() || req.args.is_some() {
                return Err(Error::Invalid(
                    "with tests, stdin and args belong to each test".into(),
                ));
            }
            if tests.is_empty() {
                return Err(Error::Invalid(format!(
                    "tests must have 1 to {MAX_TESTS} items"
                )));
            }
            let tests = tests
                .into_iter()
                .map(|t| TestCase {
                    stdin: crate::bytes::Bytes::from(t.stdin.unwrap_or_default()),
                    expected_stdout: crate::bytes::Bytes::from(
                        t.expected_stdout.unwrap_or_default(),
                    ),
                    args: t.args.unwrap_or_default(),
                })
                .collect();
            let c = req.compare.flatten().unwrap_or_default();
            let compare = Compare {
                mode: c.mode.unwrap_or_default(),
                abs_tol: c.abs_tol,
                rel_tol: c.rel_tol,
            };
            (
                tests,
                compare,
                req.stop_on_failure.flatten().unwrap_or(false),
            )
        }
        None => {
            if req.compare.is_some() || req.stop_on_failure.is_some() {
                return Err(Error::Invalid(
                    "compare and stop_on_failure go with tests".into(),
                ));
            }
            (Vec::new(), Compare::default(), false)
        }
    };
    let spec = CodeSpec {
        language,
        compiler,
        code,
        stdin: crate::bytes::Bytes::from(req.stdin.unwrap_or_default()),
        args: req.args.unwrap_or_default(),
        limits: validate_limits(req.limits.unwrap_or_default())?,
        tests,
        compare,
        stop_on_failure,
    };
    check_code(&spec)?;
    Ok(spec)
}

/// Bounds of a judged spec: how many tests, each test's sizes and arguments, tolerances
/// that are numbers and only where they apply.
fn check_tests(spec: &CodeSpec) -> Result<()> {
    if spec.tests.len() > MAX_TESTS {
        return Err(Error::Invalid(format!(
            "tests must have 1 to {MAX_TESTS} items, not {}",
            spec.tests.len()
        )));
    }
    if spec.is_judged() && (!spec.stdin.is_empty() || !spec.args.is_empty()) {
        return Err(Error::Invalid(
            "with tests, stdin and args belong to each test".into(),
        ));
    }
    for (i, t) in spec.tests.iter().enumerate() {
        if t.stdin.len() > MAX_STDIN_BYTES {
            return Err(Error::Invalid(format!(
                "tests[{i}].stdin is {} bytes; at most {MAX_STDIN_BYTES} are accepted",
                t.stdin.len()
            )));
        }
        if t.expected_stdout.len() > MAX_EXPECTED_BYTES {
            return Err(Error::Invalid(format!(
                "tests[{i}].expected_stdout is {} bytes; at most {MAX_EXPECTED_BYTES} are accepted",
                t.expected_stdout.len()
            )));
        }
        check_args(&t.args, &format!("tests[{i}].args"))?;
    }
    let c = spec.compare;
    for (name, tol) in [("abs_tol", c.abs_tol), ("rel_tol", c.rel_tol)] {
        match tol {
            None => {}
            Some(_) if c.mode != CompareMode::Tokens => {
                return Err(Error::Invalid(format!(
                    "compare.{name} applies to mode tokens only"
                )));
            }
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(Error::Invalid(format!(
                    "compare.{name} must be a number of at least 0"
                )));
            }
            Some(_) => {}
        }
    }
    if !spec.is_judged() && (!c.is_default() || spec.stop_on_failure) {
        return Err(Error::Invalid(
            "compare and stop_on_failure go with tests".into(),
        ));
    }
    Ok(())
}

fn check_args(args: &[String], what: &str) -> Result<()> {
    if args.len() > MAX_ARGS
        || args
            .iter()
            .any(|a| a.len() > MAX_ARG_BYTES || a.contains('\0'))
    {
        return Err(Error::Invalid(format!(
            "{what}: at most {MAX_ARGS} of at most {MAX_ARG_BYTES} bytes each, without NUL"
        )));
    }
    Ok(())
}

/// The bounds of a code spec, checked where it is made and again by the worker, which
/// trusts no message: a queue is not a trust boundary.
fn check_code(spec: &CodeSpec) -> Result<()> {
    if spec.code.len() > MAX_CODE_BYTES {
        return Err(Error::Invalid(format!(
            "code is {} bytes; at most {MAX_CODE_BYTES} are accepted",
            spec.code.len()
        )));
    }
    if spec.code.contains('\0') {
        // No compiler or interpreter takes it as source; binary input belongs in stdin.
        return Err(Error::Invalid(
            "code must not contain NUL characters".into(),
        ));
    }
    if spec.stdin.len() > MAX_STDIN_BYTES {
        return Err(Error::Invalid(format!(
            "stdin is {} bytes; at most {MAX_STDIN_BYTES} are accepted",
            spec.stdin.len()
        )));
    }
    check_args(&spec.args, "args")?;
    check_tests(spec)?;
    let l = spec.limits;
    validate_limits(LimitsRequest {
        time_ms: Some(l.time_ms),
        memory_mb: Some(l.memory_mb),
        output_kb: Some(l.output_kb),
        stack_mb: Some(l.stack_mb),
    })?;
    Ok(())
}

/// Re-checks a spec from a queue message against every bound the API applies, so a
/// forged or corrupted message cannot ask for more (`memory_mb: 0` would mean unlimited
/// to the container engine).
///
/// # Errors
/// `Invalid`, naming the first bound the spec breaks.
pub fn check_spec(spec: &TaskSpec) -> Result<()> {
    match spec {
        TaskSpec::Code(spec) => {
            let def = languages::find(&spec.language)
                .ok_or_else(|| Error::Invalid(format!("unknown language {:?}", spec.language)))?;
            let compiler_ok = match spec.compiler {
                None => def.compilers().is_empty(),
                Some(c) => def.compilers().contains(&c),
            };
            if !compiler_ok {
                return Err(Error::Invalid(format!(
                    "compiler {:?} does not fit {}",
                    spec.compiler.map(|c| c.as_str()),
                    spec.language
                )));
            }
            check_code(spec)
        }
        TaskSpec::Image(spec) => {
            let key_ok = spec
                .input_key
                .strip_prefix("input/")
                .and_then(|k| k.strip_suffix(".png"))
                .is_some_and(|id| Uuid::parse_str(id).is_ok());
            if !key_ok {
                return Err(Error::Invalid(format!(
                    "input key {:?} is not one the API makes",
                    spec.input_key
                )));
            }
            match spec.filter {
                Filter::Sharpen { sigma } | Filter::Blur { sigma }
                    if !SIGMA_RANGE.contains(&sigma) =>
                {
                    Err(Error::Invalid(format!("sigma {sigma} is out of range")))
                }
                _ => Ok(()),
            }
        }
    }
}

fn validate_limits(req: LimitsRequest) -> Result<Limits> {
    let pick = |name: &str, value: Option<u32>, min: u32, default: u32, max: u32| {
        let v = value.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(Error::Invalid(format!(
                "limits.{name} must be {min} to {max}, got {v}"
            )))
        }
    };
    let (d, lo, hi) = (Limits::DEFAULT, Limits::MIN, Limits::MAX);
    Ok(Limits {
        time_ms: pick("time_ms", req.time_ms, lo.time_ms, d.time_ms, hi.time_ms)?,
        memory_mb: pick(
            "memory_mb",
            req.memory_mb,
            lo.memory_mb,
            d.memory_mb,
            hi.memory_mb,
        )?,
        output_kb: pick(
            "output_kb",
            req.output_kb,
            lo.output_kb,
            d.output_kb,
            hi.output_kb,
        )?,
        stack_mb: pick(
            "stack_mb",
            req.stack_mb,
            lo.stack_mb,
            d.stack_mb,
            hi.stack_mb,
        )?,
    })
}

fn validate_image(req: SubmitRequest, inline_max: usize) -> Result<(ImageSpec, ImageInput)> {
    let input = match (req.image_base64, req.image_key) {
        (Some(b64), None) => ImageInput::Inline(inline_png(&b64, inline_max)?),
        (None, Some(key)) => ImageInput::Uploaded(key),
        (Some(_), Some(_)) => {
            return Err(Error::Invalid(
                "an image task takes image_base64 or image_key, not both".into(),
            ));
        }
        (None, None) => {
            return Err(Error::Invalid(
                "image_base64 or image_key is required for image tasks".into(),
            ));
        }
    };
    let filter = req
        .filter
        .ok_or_else(|| Error::Invalid("filter is required for image tasks".into()))?;
    let params = filter.parameters.unwrap_or_default();
    let sigma = || {
        let s = params.sigma.flatten().unwrap_or(1.0);
        if SIGMA_REQUEST_RANGE.contains(&s) {
            #[allow(clippy::cast_possible_truncation)] // in range, so it fits
            Ok(s as f32)
        } else {
            Err(Error::Invalid(format!(
                "filter.parameters.sigma must be {} to {}",
                SIGMA_RANGE.start(),
                SIGMA_RANGE.end()
            )))
        }
    };
    let no_params = |name: &str| {
        if params.sigma.is_some() {
            Err(Error::Invalid(format!("filter {name} takes no parameters")))
        } else {
            Ok(())
        }
    };
    let filter = match filter.name.as_str() {
        "sharpen" => Filter::Sharpen { sigma: sigma()? },
        "blur" => Filter::Blur { sigma: sigma()? },
        "negative" => {
            no_params("negative")?;
            Filter::Negative
        }
        "flipx" => {
            no_params("flipx")?;
            Filter::Flipx
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown filter {other:?}: one of sharpen, blur, negative, flipx"
            )));
        }
    };
    let spec = ImageSpec {
        input_key: format!("input/{}.png", Uuid::new_v4()),
        filter,
    };
    Ok((spec, input))
}

/// An inline PNG, decoded and checked.
fn inline_png(b64: &str, max: usize) -> Result<Vec<u8>> {
    // Refuse before decoding anything larger than the limit can produce.
    let too_large = || {
        let detail = format!("the image is larger than {max} bytes");
        if max < png::MAX_BYTES {
            // Within the platform's limit, over this deployment's inline one.
            Error::TooLarge(format!(
                "{detail}, the most a request carries here: upload it first (POST /task/upload) and send its image_key"
            ))
        } else {
            Error::Invalid(detail)
        }
    };
    if b64.len() / 4 * 3 > max + 3 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Error::Invalid("image_base64 is not valid base64".into()))?;
    if bytes.len() > max && max < png::MAX_BYTES {
        return Err(too_large());
    }
    png::check(&bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryBlobStore, MemoryQueue, MemoryTaskStore};

    fn service() -> (TaskService, MemoryQueue) {
        let queue = MemoryQueue::new(3);
        let svc = TaskService::new(
            Arc::new(MemoryTaskStore::default()),
            Arc::new(MemoryBlobStore::default()),
            Arc::new(queue.clone()),
        );
        (svc, queue)
    }

    fn code(lang: &str) -> SubmitRequest {
        SubmitRequest {
            language: Some(lang.into()),
            code: Some("print(1)".into()),
            ..Default::default()
        }
    }

    /// What the worker re-checks in a message: everything the API checks.
    #[test]
    fn nested_parts_must_be_objects() {
        let parse = |v: serde_json::Value| serde_json::from_value::<SubmitRequest>(v);
        assert!(parse(serde_json::json!({"language": "c", "limits": [null, null]})).is_err());
        assert!(parse(serde_json::json!({"filter": ["blur", null]})).is_err());
        let r = parse(serde_json::json!({"limits": {"time_ms": 10}, "filter": null})).unwrap();
        assert_eq!(r.limits.unwrap().time_ms, Some(10));
    }

    #[test]
    fn limits_take_whole_numbers_however_written() {
        let parse = |v: serde_json::Value| serde_json::from_value::<LimitsRequest>(v);
        let l = parse(serde_json::json!({"time_ms": 3000.0, "memory_mb": 64})).unwrap();
        assert_eq!(
            (l.time_ms, l.memory_mb, l.output_kb),
            (Some(3000), Some(64), None)
        );
        assert!(parse(serde_json::json!({"time_ms": 1.5})).is_err());
        assert!(parse(serde_json::json!({"time_ms": -1})).is_err());
        assert!(parse(serde_json::json!({"time_ms": 1e12})).is_err());
        assert!(parse(serde_json::json!({"time_ms": "5"})).is_err());
        assert!(
            parse(serde_json::json!({"time_ms": null}))
                .unwrap()
                .time_ms
                .is_none()
        );
    }

    #[test]
    fn a_spec_outside_the_api_s_bounds_is_refused() {
        let good = CodeSpec {
            language: "c".into(),
            compiler: Some(Compiler::Gcc),
            code: "int main(){}".into(),
            stdin: "x".into(),
            args: vec!["a".into()],
            limits: Limits::DEFAULT,
            ..Default::default()
        };
        check_spec(&TaskSpec::Code(good.clone())).unwrap();
        type Spoil = Box<dyn Fn(&mut CodeSpec)>;
        let bad: Vec<(&str, Spoil)> = vec![
            ("memory_mb 0", Box::new(|s| s.limits.memory_mb = 0)),
            (
                "memory_mb max+1",
                Box::new(|s| s.limits.memory_mb = Limits::MAX.memory_mb + 1),
            ),
            ("time_ms 0", Box::new(|s| s.limits.time_ms = 0)),
            (
                "time_ms max+1",
                Box::new(|s| s.limits.time_ms = Limits::MAX.time_ms + 1),
            ),
            ("output_kb 0", Box::new(|s| s.limits.output_kb = 0)),
            (
                "output_kb max+1",
                Box::new(|s| s.limits.output_kb = Limits::MAX.output_kb + 1),
            ),
            ("language", Box::new(|s| s.language = "cobol".into())),
            ("no compiler", Box::new(|s| s.compiler = None)),
            (
                "code size",
                Box::new(|s| s.code = "x".repeat(MAX_CODE_BYTES + 1)),
            ),
            ("code NUL", Box::new(|s| s.code = "a\0".into())),
            (
                "stdin size",
                Box::new(|s| s.stdin = vec![0u8; MAX_STDIN_BYTES + 1].into()),
            ),
            (
                "args count",
                Box::new(|s| s.args = vec!["a".into(); MAX_ARGS + 1]),
            ),
            ("arg NUL", Box::new(|s| s.args = vec!["a\0b".into()])),
            (
                "tests with stdin",
                Box::new(|s| s.tests = vec![TestCase::default()]),
            ),
            (
                "too many tests",
                Box::new(|s| judged(s, vec![TestCase::default(); MAX_TESTS + 1])),
            ),
            (
                "test stdin size",
                Box::new(|s| {
                    judged(
                        s,
                        vec![TestCase {
                            stdin: vec![0u8; MAX_STDIN_BYTES + 1].into(),
                            ..TestCase::default()
                        }],
                    )
                }),
            ),
            (
                "expected size",
                Box::new(|s| {
                    judged(
                        s,
                        vec![TestCase {
                            expected_stdout: vec![b'1'; MAX_EXPECTED_BYTES + 1].into(),
                            ..TestCase::default()
                        }],
                    )
                }),
            ),
            (
                "test arg NUL",
                Box::new(|s| {
                    judged(
                        s,
                        vec![TestCase {
                            args: vec!["a\0".into()],
                            ..TestCase::default()
                        }],
                    )
                }),
            ),
            (
                "tolerance outside tokens",
                Box::new(|s| {
                    judged(s, vec![TestCase::default()]);
                    s.compare.abs_tol = Some(0.1);
                }),
            ),
            (
                "negative tolerance",
                Box::new(|s| {
                    judged(s, vec![TestCase::default()]);
                    s.compare = Compare {
                        mode: CompareMode::Tokens,
                        abs_tol: None,
                        rel_tol: Some(-1.0),
                    };
                }),
            ),
            (
                "NaN tolerance",
                Box::new(|s| {
                    judged(s, vec![TestCase::default()]);
                    s.compare = Compare {
                        mode: CompareMode::Tokens,
                        abs_tol: Some(f64::NAN),
                        rel_tol: None,
                    };
                }),
            ),
            (
                "stop_on_failure without tests",
                Box::new(|s| s.stop_on_failure = true),
            ),
        ];
        fn judged(s: &mut CodeSpec, tests: Vec<TestCase>) {
            s.stdin = Default::default();
            s.args = vec![];
            s.tests = tests;
        }
        let mut fine = good.clone();
        judged(&mut fine, vec![TestCase::default(); MAX_TESTS]);
        fine.compare = Compare {
            mode: CompareMode::Tokens,
            abs_tol: Some(0.0),
            rel_tol: Some(1e-9),
        };
        check_spec(&TaskSpec::Code(fine)).unwrap();
        for (what, spoil) in bad {
            let mut spec = good.clone();
            spoil(&mut spec);
            assert!(
                matches!(check_spec(&TaskSpec::Code(spec)), Err(Error::Invalid(_))),
                "{what} was accepted"
            );
        }
        let python = CodeSpec {
            language: "python".into(),
            compiler: Some(Compiler::Gcc),
            ..good
        };
        assert!(
            check_spec(&TaskSpec::Code(python)).is_err(),
            "python with a compiler"
        );
        let image = |key: &str, filter| {
            check_spec(&TaskSpec::Image(ImageSpec {
                input_key: key.into(),
                filter,
            }))
        };
        let key = format!("input/{}.png", Uuid::new_v4());
        image(&key, Filter::Blur { sigma: 2.0 }).unwrap();
        for (key, filter) in [
            ("../etc/passwd", Filter::Negative),
            ("output/x.png", Filter::Negative),
            (key.as_str(), Filter::Blur { sigma: 0.0 }),
            (key.as_str(), Filter::Sharpen { sigma: f32::NAN }),
            (key.as_str(), Filter::Blur { sigma: 1000.0 }),
        ] {
            assert!(image(key, filter).is_err(), "{key} {filter:?}");
        }
    }

    /// An image result may only name its own task's output key.
    #[tokio::test]
    async fn an_image_result_cannot_point_at_another_blob() {
        let (svc, _queue) = service();
        let owner = Uuid::new_v4();
        // A header is all the API looks at before the worker decodes.
        let mut png = png::SIGNATURE.to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0, 0, 0, 0]);
        let submitted = svc
            .submit(
                owner,
                SubmitRequest {
                    kind: Some(TaskKind::Image),
                    image_base64: Some(base64::engine::general_purpose::STANDARD.encode(&png)),
                    filter: Some(FilterRequest {
                        name: "negative".into(),
                        parameters: None,
                    }),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        let TaskSpec::Image(spec) = &submitted.task.spec else {
            panic!("an image task")
        };
        let id = submitted.task.id;
        let commit = |key: String| Commit {
            task_id: id,
            status: TaskStatus::Completed,
            result: TaskResult::Image(ImageResult {
                verdict: Verdict::Ok,
                output_key: Some(key),
                error: None,
            }),
        };
        for stolen in [
            spec.input_key.clone(),
            format!("output/{}.png", Uuid::new_v4()),
        ] {
            assert!(matches!(
                svc.commit(&commit(stolen)).await,
                Err(Error::Invalid(_))
            ));
        }
        svc.commit(&commit(output_key(id))).await.unwrap();
    }

    /// A PNG header: all the API looks at before the worker decodes.
    fn image_from(key: Option<&str>, b64: Option<String>) -> SubmitRequest {
        SubmitRequest {
            kind: Some(TaskKind::Image),
            image_key: key.map(str::to_owned),
            image_base64: b64,
            filter: Some(FilterRequest {
                name: "negative".into(),
                parameters: None,
            }),
            ..Default::default()
        }
    }

    /// A service, and an image task its owner submitted from an upload: the upload's key,
    /// the PNG and the task's spec.
    async fn submitted_from_an_upload() -> (TaskService, Uuid, String, Vec<u8>, ImageSpec) {
        let (svc, _queue) = service();
        let owner = Uuid::new_v4();
        let png = base64::engine::general_purpose::STANDARD
            .decode(tiny_png_base64())
            .unwrap();
        let key = upload_key(owner);
        svc.blobs.put(&key, png.clone()).await.unwrap();
        let submitted = svc
            .submit(owner, image_from(Some(&key), None), None)
            .await
            .unwrap();
        let TaskSpec::Image(spec) = submitted.task.spec else {
            panic!("an image task")
        };
        (svc, owner, key, png, spec)
    }

    /// Uploads are deleted once older than they are kept; a task's own copy of one is not.
    #[tokio::test]
    async fn expired_uploads_are_deleted_and_task_inputs_kept() {
        let (svc, _owner, key, png, spec) = submitted_from_an_upload().await;
        assert_eq!(svc.expire_uploads(UPLOAD_KEPT).await.unwrap(), 0, "young");
        assert!(svc.blobs.get(&key).await.unwrap().is_some());
        assert_eq!(
            svc.expire_uploads(chrono::Duration::seconds(-5))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            svc.blobs.get(&key).await.unwrap(),
            None,
            "the upload is gone"
        );
        assert_eq!(
            svc.blobs.get(&spec.input_key).await.unwrap(),
            Some(png),
            "the task's copy stays"
        );
    }

    /// A task from an upload gets a checked copy of its own; only the uploader's own,
    /// existing, PNG, not-too-large upload is taken.
    #[tokio::test]
    async fn an_image_task_takes_its_owners_upload() {
        let (svc, owner, key, png, spec) = submitted_from_an_upload().await;
        assert!(spec.input_key.starts_with("input/"), "{}", spec.input_key);
        assert_eq!(
            svc.blobs.get(&spec.input_key).await.unwrap(),
            Some(png.clone())
        );
        // Rewriting the upload afterwards does not touch the task's copy.
        svc.blobs.put(&key, b"not a png".to_vec()).await.unwrap();
        assert_eq!(
            svc.blobs.get(&spec.input_key).await.unwrap(),
            Some(png.clone())
        );

        let someone = Uuid::new_v4();
        let theirs = upload_key(someone);
        svc.blobs.put(&theirs, png.clone()).await.unwrap();
        let big = upload_key(owner);
        let mut over = png.clone();
        over.resize(png::MAX_BYTES + 1, 0);
        svc.blobs.put(&big, over).await.unwrap();
        let refused: [(&str, SubmitRequest); 7] = [
            ("another user's upload", image_from(Some(&theirs), None)),
            (
                "a missing upload",
                image_from(Some(&upload_key(owner)), None),
            ),
            ("not a PNG", image_from(Some(&key), None)),
            ("an input key", image_from(Some(&spec.input_key), None)),
            (
                "a path",
                image_from(Some(&format!("uploads/{owner}/../x.png")), None),
            ),
            ("both", image_from(Some(&key), Some(tiny_png_base64()))),
            ("neither", image_from(None, None)),
        ];
        for (what, request) in refused {
            let e = svc.submit(owner, request, None).await.unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{what}: {e:?}");
        }
        let e = svc
            .submit(owner, image_from(Some(&big), None), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e:?}");
        let e = svc
            .submit(
                owner,
                SubmitRequest {
                    code: Some("x".into()),
                    ..image_from(Some(&key), None)
                },
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    }

    /// Where requests must stay small, an inline PNG over the limit is refused with 413
    /// and a pointer to uploads; within it, taken as usual.
    #[tokio::test]
    async fn inline_images_above_the_deployments_limit_are_too_large() {
        let (svc, _queue) = service();
        let svc = svc.with_inline_image_limit(40);
        let owner = Uuid::new_v4();
        svc.submit(owner, image_from(None, Some(tiny_png_base64())), None)
            .await
            .unwrap();
        let mut png = base64::engine::general_purpose::STANDARD
            .decode(tiny_png_base64())
            .unwrap();
        png.resize(41, 0);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        let e = svc
            .submit(owner, image_from(None, Some(b64)), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::TooLarge(m) if m.contains("POST /task/upload")),
            "{e:?}"
        );
    }

    fn tiny_png_base64() -> String {
        let mut png = png::SIGNATURE.to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0, 0, 0, 0]);
        base64::engine::general_purpose::STANDARD.encode(&png)
    }

    /// Filter parameters as the document states them: sigma (null = default) only for
    /// blur and sharpen, its range compared as written.
    #[tokio::test]
    async fn filter_parameters_follow_the_document() {
        use serde_json::json;
        let (svc, _queue) = service();
        let owner = Uuid::new_v4();
        let submit = |filter: serde_json::Value| {
            let svc = svc.clone();
            async move {
                let req = SubmitRequest {
                    kind: Some(TaskKind::Image),
                    image_base64: Some(tiny_png_base64()),
                    filter: Some(serde_json::from_value(filter).unwrap()),
                    ..Default::default()
                };
                svc.submit(owner, req, None)
                    .await
                    .map(|s| match s.task.spec {
                        TaskSpec::Image(spec) => spec.filter,
                        TaskSpec::Code(_) => panic!("an image task"),
                    })
            }
        };
        for (filter, expected) in [
            (json!({"name": "blur"}), Filter::Blur { sigma: 1.0 }),
            (
                json!({"name": "blur", "parameters": {"sigma": null}}),
                Filter::Blur { sigma: 1.0 },
            ),
            (
                json!({"name": "sharpen", "parameters": {"sigma": 0.1}}),
                Filter::Sharpen { sigma: 0.1 },
            ),
            (
                json!({"name": "blur", "parameters": {"sigma": 50}}),
                Filter::Blur { sigma: 50.0 },
            ),
            (json!({"name": "flipx", "parameters": {}}), Filter::Flipx),
            (
                json!({"name": "negative", "parameters": null}),
                Filter::Negative,
            ),
        ] {
            assert_eq!(submit(filter.clone()).await.unwrap(), expected, "{filter}");
        }
        for filter in [
            json!({"name": "blur", "parameters": {"sigma": 50.000_000_1}}),
            json!({"name": "blur", "parameters": {"sigma": 0.099_999_999}}),
            json!({"name": "flipx", "parameters": {"sigma": null}}),
            json!({"name": "negative", "parameters": {"sigma": 1}}),
        ] {
            assert!(
                matches!(submit(filter.clone()).await, Err(Error::Invalid(_))),
                "{filter}"
            );
        }
    }

    #[tokio::test]
    async fn submit_applies_defaults_and_publishes() {
        let (svc, queue) = service();
        let owner = Uuid::new_v4();
        let s = svc.submit(owner, code("c"), None).await.unwrap();
        assert!(s.created);
        let TaskSpec::Code(spec) = &s.task.spec else {
            panic!("code spec expected")
        };
        assert_eq!(spec.compiler, Some(Compiler::Gcc));
        assert_eq!(spec.limits, Limits::DEFAULT);
        assert_eq!(queue.len(), 1);
    }

    #[tokio::test]
    async fn rejects_bad_requests() {
        let (svc, queue) = service();
        let owner = Uuid::new_v4();
        let bad = [
            code("cobol"),
            SubmitRequest {
                compiler: Some(Compiler::Clang),
                ..code("python")
            },
            SubmitRequest {
                limits: Some(LimitsRequest {
                    time_ms: Some(20_001),
                    ..Default::default()
                }),
                ..code("python")
            },
            SubmitRequest {
                code: Some("x".repeat(MAX_CODE_BYTES + 1)),
                ..code("python")
            },
            SubmitRequest {
                tests: Some(vec![]),
                ..code("python")
            },
            SubmitRequest {
                tests: Some(vec![TestRequest::default()]),
                stdin: Some("top-level".into()),
                ..code("python")
            },
            SubmitRequest {
                tests: Some(vec![TestRequest::default()]),
                args: Some(vec![]),
                ..code("python")
            },
            SubmitRequest {
                compare: Some(Some(CompareRequest::default())),
                ..code("python")
            },
            SubmitRequest {
                compare: Some(None),
                ..code("python")
            },
            SubmitRequest {
                stop_on_failure: Some(Some(false)),
                ..code("python")
            },
            SubmitRequest {
                stop_on_failure: Some(None),
                ..code("python")
            },
            SubmitRequest {
                tests: Some(vec![TestRequest::default()]),
                compare: Some(Some(CompareRequest {
                    mode: Some(CompareMode::Lines),
                    abs_tol: Some(0.5),
                    rel_tol: None,
                })),
                ..code("python")
            },
            SubmitRequest {
                kind: Some(TaskKind::Image),
                image_base64: Some("aGVsbG8=".into()),
                filter: Some(FilterRequest {
                    name: "negative".into(),
                    parameters: None,
                }),
                ..Default::default()
            },
        ];
        for req in bad {
            let err = svc.submit(owner, req, None).await.unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        }
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn idempotency_key_returns_the_first_task() {
        let (svc, queue) = service();
        let owner = Uuid::new_v4();
        let a = svc.submit(owner, code("python"), Some("k1")).await.unwrap();
        let b = svc.submit(owner, code("python"), Some("k1")).await.unwrap();
        assert_eq!(a.task.id, b.task.id);
        assert!(!b.created);
        let other = svc
            .submit(Uuid::new_v4(), code("python"), Some("k1"))
            .await
            .unwrap();
        assert_ne!(other.task.id, a.task.id);
        assert_eq!(queue.len(), 2);
    }

    #[tokio::test]
    async fn publish_failure_leaves_nothing_behind() {
        let store = Arc::new(MemoryTaskStore::default());
        let queue = MemoryQueue::new(3);
        queue.set_available(false);
        let svc = TaskService::new(
            store.clone(),
            Arc::new(MemoryBlobStore::default()),
            Arc::new(queue),
        );
        let owner = Uuid::new_v4();
        let err = svc
            .submit(owner, code("python"), Some("k"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
        let page = store.list_by_owner(owner, 10, None).await.unwrap();
        assert!(page.items.is_empty());
    }

    /// The outbox: a task whose creator died between storing and publishing it is
    /// published by the sweeper once it is older than the sweep's age, once; a task
    /// submitted normally, or cancelled meanwhile, is never published again.
    #[tokio::test]
    async fn the_sweeper_publishes_what_a_dead_creator_left_unqueued() {
        let store = Arc::new(MemoryTaskStore::default());
        let queue = MemoryQueue::new(3);
        let svc = TaskService::new(
            store.clone(),
            Arc::new(MemoryBlobStore::default()),
            Arc::new(queue.clone()),
        );
        let owner = Uuid::new_v4();
        let since = time::now() - chrono::Duration::hours(24);
        // Submitted normally: queued and out of the outbox.
        svc.submit(owner, code("python"), None).await.unwrap();
        assert_eq!(queue.len(), 1);
        // Stored two minutes ago by a creator that died before publishing.
        let (spec, _) = validate(code("python"), png::MAX_BYTES).unwrap();
        let mut orphan = Task::new(owner, spec.clone());
        orphan.created_at = time::now() - chrono::Duration::minutes(2);
        store.create(&orphan, None, since).await.unwrap();
        let mut cancelled = Task::new(owner, spec.clone());
        cancelled.created_at = orphan.created_at;
        store.create(&cancelled, None, since).await.unwrap();
        svc.cancel(owner, cancelled.id).await.unwrap();
        // Stored just now: its creator may still be publishing it.
        let fresh = Task::new(owner, spec);
        store.create(&fresh, None, since).await.unwrap();

        let minute = chrono::Duration::minutes(1);
        assert_eq!(svc.sweep(minute, 100).await.unwrap(), 1);
        assert_eq!(queue.len(), 2);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let d = crate::ports::QueueConsumer::receive(&queue, std::time::Duration::from_secs(1))
                .await
                .unwrap()
                .unwrap();
            ids.push(d.message.task_id);
        }
        assert!(ids.contains(&orphan.id), "{ids:?}");
        assert!(!ids.contains(&cancelled.id) && !ids.contains(&fresh.id));
        assert_eq!(svc.sweep(minute, 100).await.unwrap(), 0, "published once");
        let left = store
            .unpublished(time::now() + chrono::Duration::seconds(1), 100)
            .await
            .unwrap();
        assert_eq!(
            left.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![fresh.id]
        );
    }

    #[tokio::test]
    async fn cancel_then_commit_keeps_cancelled() {
        let (svc, _q) = service();
        let owner = Uuid::new_v4();
        let t = svc.submit(owner, code("python"), None).await.unwrap().task;
        assert_eq!(
            svc.start(t.id, Uuid::new_v4()).await.unwrap(),
            StartDecision::Run
        );
        svc.cancel(owner, t.id).await.unwrap();
        assert_eq!(svc.cancelled_among(&[t.id]).await.unwrap(), vec![t.id]);
        let commit = Commit {
            task_id: t.id,
            status: TaskStatus::Completed,
            result: TaskResult::Code(crate::domain::CodeResult::empty(Verdict::Ok)),
        };
        svc.commit(&commit).await.unwrap();
        let got = svc.get(owner, t.id).await.unwrap();
        assert_eq!(got.status, TaskStatus::Cancelled);
        assert!(matches!(
            svc.cancel(owner, t.id).await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            svc.start(t.id, Uuid::new_v4()).await.unwrap(),
            StartDecision::Skip
        );
    }

    /// A redelivered message of a task another worker runs is not run again while that
    /// worker holds the lease; a lease given up (the message went back) frees it at once.
    #[tokio::test]
    async fn a_running_task_s_lease_keeps_a_second_start_out_until_released() {
        let (svc, _q) = service();
        let owner = Uuid::new_v4();
        let t = svc.submit(owner, code("python"), None).await.unwrap().task;
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(svc.start(t.id, first).await.unwrap(), StartDecision::Run);
        // The same run asking again (its answer was lost) is still told to run.
        assert_eq!(svc.start(t.id, first).await.unwrap(), StartDecision::Run);
        assert_eq!(
            svc.start(t.id, second).await.unwrap(),
            StartDecision::Leased
        );
        svc.renew(&[(t.id, first), (Uuid::new_v4(), first)])
            .await
            .unwrap();
        // Only the holder gives its lease up.
        svc.release(t.id, second).await.unwrap();
        assert_eq!(
            svc.start(t.id, second).await.unwrap(),
            StartDecision::Leased
        );
        svc.release(t.id, first).await.unwrap();
        assert_eq!(svc.start(t.id, second).await.unwrap(), StartDecision::Run);
        assert_eq!(svc.start(t.id, first).await.unwrap(), StartDecision::Leased);
        let commit = Commit {
            task_id: t.id,
            status: TaskStatus::Completed,
            result: TaskResult::Code(crate::domain::CodeResult::empty(Verdict::Ok)),
        };
        svc.commit(&commit).await.unwrap();
        assert_eq!(svc.start(t.id, second).await.unwrap(), StartDecision::Skip);
        assert_eq!(
            svc.start(Uuid::new_v4(), first).await.unwrap(),
            StartDecision::Skip
        );
    }

    #[tokio::test]
    async fn other_users_task_is_not_found() {
        let (svc, _q) = service();
        let t = svc
            .submit(Uuid::new_v4(), code("python"), None)
            .await
            .unwrap()
            .task;
        assert!(matches!(
            svc.get(Uuid::new_v4(), t.id).await,
            Err(Error::NotFound(_))
        ));
    }
}

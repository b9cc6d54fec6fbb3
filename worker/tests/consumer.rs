//! The consumer loop driven step by step with `process_one`, against the in-memory queue
//! and stores and a scripted sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use codebox_core::Error;
use codebox_core::domain::TaskKind;
use codebox_core::domain::{
    CodeResult, Commit, LeaseId, StartDecision, TaskId, TaskResult, TaskStatus, Verdict,
};
use codebox_core::memory::{MemoryBlobStore, MemoryQueue, MemoryTaskStore};
use codebox_core::ports::{
    BlobStore, Delivery, QueueConsumer, Sandbox, SandboxJob, Settle, TaskControl,
};
use codebox_core::tasks::{FilterRequest, SubmitRequest, TaskService};
use codebox_worker::consumer::{Outcome, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Clone, Copy)]
enum Script {
    Hello,
    Fail,
    WaitForCancel,
    /// Takes this long, then prints hello.
    Slow(Duration),
}

struct FakeSandbox {
    script: Script,
    calls: AtomicU32,
    /// An engine that does not answer: runs and pings fail.
    down: AtomicBool,
}

#[async_trait]
impl Sandbox for FakeSandbox {
    async fn ping(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("engine down".into()));
        }
        Ok(())
    }

    async fn run(&self, _job: &SandboxJob, cancel: CancellationToken) -> Result<CodeResult, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("engine down".into()));
        }
        match self.script {
            Script::Hello => Ok(CodeResult {
                stdout: "hello\n".into(),
                exit_code: Some(0),
                ..CodeResult::empty(Verdict::Ok)
            }),
            Script::Fail => Err(Error::Unavailable("engine down".into())),
            Script::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(CodeResult {
                    stdout: "hello\n".into(),
                    exit_code: Some(0),
                    ..CodeResult::empty(Verdict::Ok)
                })
            }
            Script::WaitForCancel => {
                tokio::select! {
                    _ = cancel.cancelled() => Ok(CodeResult::empty(Verdict::Cancelled)),
                    _ = tokio::time::sleep(Duration::from_secs(10)) => Ok(CodeResult::empty(Verdict::TimeLimit)),
                }
            }
        }
    }
}

/// The API as the worker sees it: it can fail single commits while it answers, be down
/// altogether (every call and the probe fail), or refuse outcomes as invalid.
struct FlakyControl {
    inner: TaskService,
    fail_commits: AtomicU32,
    down: Arc<AtomicBool>,
    refuse_commits: AtomicU32,
    /// Calls of the cancel watch (one per poll for all running tasks).
    batch_checks: Arc<AtomicU32>,
    /// Starts applied whose answer is then lost (the gateway died mid-request).
    lose_start_answers: AtomicU32,
}

impl FlakyControl {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the API: connection refused".into()));
        }
        Ok(())
    }
}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait]
impl TaskControl for FlakyControl {
    async fn ping(&self) -> Result<(), Error> {
        self.check()
    }
    async fn start_delivery(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: u32,
    ) -> Result<StartDecision, Error> {
        self.check()?;
        let decision = self.inner.start_delivery(id, holder, deferrals).await?;
        if take_one(&self.lose_start_answers) {
            return Err(Error::Invalid("the answer was lost".into()));
        }
        Ok(decision)
    }
    async fn renew(&self, leases: &[(TaskId, LeaseId)]) -> Result<(), Error> {
        self.check()?;
        self.inner.renew(leases).await
    }
    async fn release(&self, id: TaskId, holder: LeaseId) -> Result<(), Error> {
        self.check()?;
        self.inner.release(id, holder).await
    }
    async fn cancelled_among(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, Error> {
        self.check()?;
        self.batch_checks.fetch_add(1, Ordering::SeqCst);
        self.inner.cancelled_among(ids).await
    }
    async fn progress(
        &self,
        id: TaskId,
        attempt: u32,
        events: Vec<codebox_core::domain::TaskEvent>,
    ) -> Result<(), Error> {
        self.check()?;
        self.inner.progress(id, attempt, events).await
    }
    async fn commit(&self, commit: &Commit) -> Result<(), Error> {
        self.check()?;
        if take_one(&self.fail_commits) {
            return Err(Error::Unavailable("the API answered 503".into()));
        }
        if commit.status == TaskStatus::Completed && take_one(&self.refuse_commits) {
            return Err(Error::Invalid(
                "the API answered 400: result too big".into(),
            ));
        }
        TaskControl::commit(&self.inner, commit).await
    }
}

struct Rig {
    service: TaskService,
    queue: MemoryQueue,
    worker: Worker,
    sandbox: Arc<FakeSandbox>,
    blobs: Arc<MemoryBlobStore>,
    owner: Uuid,
    api_down: Arc<AtomicBool>,
    /// The highest delivery attempt the worker was handed.
    attempts: Arc<AtomicU32>,
    batch_checks: Arc<AtomicU32>,
}

fn rig(script: Script, fail_commits: u32) -> Rig {
    rig_with(script, fail_commits, 0)
}

/// A rig whose API lets a user run `running_cap` tasks at once (0: any).
fn rig_with(script: Script, fail_commits: u32, running_cap: u32) -> Rig {
    let queue = MemoryQueue::new(3);
    let blobs = Arc::new(MemoryBlobStore::default());
    let service = TaskService::new(
        Arc::new(MemoryTaskStore::default()),
        blobs.clone(),
        Arc::new(queue.clone()),
    )
    .with_running_cap(running_cap);
    let sandbox = Arc::new(FakeSandbox {
        script,
        calls: AtomicU32::new(0),
        down: AtomicBool::new(false),
    });
    let api_down = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU32::new(0));
    let batch_checks = Arc::default();
    let worker = Worker::new(
        Arc::new(AttemptsSeen {
            inner: queue.clone(),
            highest: attempts.clone(),
        }),
        Arc::new(FlakyControl {
            inner: service.clone(),
            fail_commits: AtomicU32::new(fail_commits),
            down: api_down.clone(),
            refuse_commits: AtomicU32::new(0),
            batch_checks: Arc::clone(&batch_checks),
            lose_start_answers: AtomicU32::new(0),
        }),
        sandbox.clone(),
        blobs.clone(),
        WorkerConfig {
            concurrency: 1,
            max_deliveries: 3,
            cancel_poll: Duration::from_millis(20),
            receive_wait: Duration::from_millis(50),
            lease: None,
            hold_backoff: (Duration::from_millis(10), Duration::from_millis(40)),
            filter: codebox_worker::filters::child::FilterLimits {
                program: env!("CARGO_BIN_EXE_codebox-worker").into(),
                ..Default::default()
            },
            live_events: true,
        },
    );
    Rig {
        service,
        queue,
        worker,
        sandbox,
        blobs,
        owner: Uuid::new_v4(),
        api_down,
        attempts,
        batch_checks,
    }
}

/// Records the highest delivery attempt handed out.
struct AttemptsSeen {
    inner: MemoryQueue,
    highest: Arc<AtomicU32>,
}

#[async_trait]
impl QueueConsumer for AttemptsSeen {
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>, Error> {
        let d = self.inner.receive(wait).await?;
        if let Some(d) = &d {
            self.highest.fetch_max(d.attempt, Ordering::SeqCst);
        }
        Ok(d)
    }
}

/// Another worker stores the task's outcome.
async fn complete_elsewhere(r: &Rig, id: TaskId) {
    TaskControl::commit(
        &r.service,
        &Commit {
            task_id: id,
            status: TaskStatus::Completed,
            result: TaskResult::Code(CodeResult::empty(Verdict::Ok)),
            notify: false,
        },
    )
    .await
    .unwrap();
}

async fn submit_code(r: &Rig) -> TaskId {
    let req = SubmitRequest {
        language: Some("python".into()),
        code: Some("print('hello')".into()),
        ..Default::default()
    };
    r.service.submit(r.owner, req, None).await.unwrap().task.id
}

/// A message the API would never make (`memory_mb: 0` is "unlimited" to the engine) is
/// not run: its task ends `failed` with the reason.
#[tokio::test]
async fn a_message_outside_the_api_s_bounds_is_never_run() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    let d = r
        .queue
        .receive(Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    let mut forged = d.message.clone();
    d.settle.ack().await.unwrap();
    if let codebox_core::domain::TaskSpec::Code(spec) = &mut forged.spec {
        spec.limits.memory_mb = 0;
    }
    codebox_core::ports::TaskQueue::publish(&r.queue, &forged)
        .await
        .unwrap();
    r.worker.process_one().await.unwrap();
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 0);
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let stderr = code_result(&t.result).stderr.to_text_lossy().into_owned();
    assert!(stderr.contains("memory_mb"), "{stderr}");
    assert!(r.queue.is_empty());
}

fn code_result(r: &Option<TaskResult>) -> &CodeResult {
    match r {
        Some(TaskResult::Code(c)) => c,
        other => panic!("expected a code result, got {other:?}"),
    }
}

#[tokio::test]
async fn runs_commits_then_acks() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Processed);
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert!(t.started_at.is_some() && t.finished_at.is_some());
    assert_eq!(code_result(&t.result).stdout, "hello\n");
    assert!(r.queue.is_empty());
    assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Empty);
}

/// A task whose owner runs as many tasks as a user may goes back to the queue without
/// spending a delivery or a sandbox, and runs once its owner has a place again.
#[tokio::test]
async fn a_task_past_its_owners_running_cap_waits_without_spending_a_delivery() {
    let r = rig_with(Script::Hello, 0, 1);
    let busy = submit_code(&r).await;
    // Another worker runs the owner's first task.
    let d = r
        .queue
        .receive(Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    d.settle.ack().await.unwrap();
    assert_eq!(
        r.service.start(busy, Uuid::new_v4()).await.unwrap(),
        StartDecision::Run
    );
    let waiting = submit_code(&r).await;
    for _ in 0..3 {
        assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Processed);
        assert_eq!(
            r.sandbox.calls.load(Ordering::SeqCst),
            0,
            "deferred, not run"
        );
        let t = r.service.get(r.owner, waiting).await.unwrap();
        assert_eq!(t.status, TaskStatus::Queued);
        wait_until("the deferred message is back", || r.queue.len() == 1).await;
    }
    complete_elsewhere(&r, busy).await;
    assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Processed);
    let t = r.service.get(r.owner, waiting).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        r.attempts.load(Ordering::SeqCst),
        1,
        "three deferrals spent no delivery (the queue's limit is 3)"
    );
    assert!(r.queue.dead_letters().is_empty());
}

/// A message that comes back while another worker runs its task (a broker restart hands
/// back every unsettled delivery) is held, not run: when that worker stores the outcome,
/// the message is acked and the program ran once.
#[tokio::test]
async fn a_message_of_a_task_running_elsewhere_waits_for_it_and_never_runs_twice() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    assert_eq!(
        r.service.start(id, Uuid::new_v4()).await.unwrap(),
        StartDecision::Run
    );
    let worker = r.worker.clone();
    let handled = tokio::spawn(async move { worker.process_one().await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!handled.is_finished(), "it waits while the lease holds");
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 0);
    complete_elsewhere(&r, id).await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), handled)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Processed);
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 0, "never run here");
    assert!(r.queue.is_empty(), "the message was acked");
}

#[tokio::test]
async fn platform_failures_are_retried_then_the_task_fails_visibly() {
    let r = rig(Script::Fail, 0);
    let id = submit_code(&r).await;
    for _ in 0..3 {
        assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Processed);
    }
    // The engine answers its probe, so each failure is the task's own: two tries per
    // delivery (the second in case the engine had just come back), three deliveries.
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 6);
    assert_eq!(r.attempts.load(Ordering::SeqCst), 3);
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let result = code_result(&t.result);
    assert_eq!(result.verdict, Verdict::InternalError);
    assert!(result.stderr.to_text_lossy().contains("3 attempts"));
    assert!(r.queue.is_empty() && r.queue.dead_letters().is_empty());
}

#[tokio::test]
async fn a_commit_failing_while_the_api_answers_is_tried_again_then_redelivered() {
    // Up to seven times: a later try in the same delivery stores it, the program ran
    // once (the outcome is in hand; running it again would spend a delivery).
    for failures in [1, 7] {
        let r = rig(Script::Hello, failures);
        let id = submit_code(&r).await;
        r.worker.process_one().await.unwrap();
        let t = r.service.get(r.owner, id).await.unwrap();
        assert_eq!(t.status, TaskStatus::Completed, "{failures}");
        assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 1, "{failures}");
    }
    // Eight times: the delivery goes back to the broker and the next one stores it.
    let r = rig(Script::Hello, 8);
    let id = submit_code(&r).await;
    r.worker.process_one().await.unwrap();
    assert_eq!(
        r.service.get(r.owner, id).await.unwrap().status,
        TaskStatus::Running
    );
    assert_eq!(r.queue.len(), 1, "the message is back in the queue");
    r.worker.process_one().await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(r.attempts.load(Ordering::SeqCst), 2);
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The API goes away: the worker holds the task it has, takes no other although it has
/// a free slot, spends no delivery, and every task completes once the API is back.
#[tokio::test]
async fn an_api_outage_spends_no_delivery_and_takes_no_new_message() {
    let mut r = rig(Script::Hello, 0);
    r.worker.config.concurrency = 2;
    r.api_down.store(true, Ordering::SeqCst);
    let mut ids = vec![submit_code(&r).await];
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (r.worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    wait_until("a delivery held", || r.worker.held() == 1).await;
    // A receive that began before the outage showed may still take one message; after
    // its wait (50 ms) the loop stands at the gate.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        ids.push(submit_code(&r).await);
    }
    // Long enough for an unheld worker to burn every delivery many times over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.queue.len(), 3, "no new message taken during the outage");
    assert_eq!(r.worker.held(), 1);
    assert_eq!(r.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 0);
    r.api_down.store(false, Ordering::SeqCst);
    for id in &ids {
        let service = r.service.clone();
        let (owner, id) = (r.owner, *id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while service.get(owner, id).await.unwrap().status != TaskStatus::Completed {
            assert!(Instant::now() < deadline, "{id} did not complete");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        r.attempts.load(Ordering::SeqCst),
        1,
        "every task on its first delivery"
    );
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 4);
    assert_eq!(r.worker.held(), 0);
    assert!(r.queue.is_empty() && r.queue.dead_letters().is_empty());
}

/// The API goes away after the program ran: the outcome is held and stored when the API
/// is back, without running the program again.
#[tokio::test]
async fn an_outcome_is_held_through_an_api_outage_not_run_again() {
    let r = rig(Script::Slow(Duration::from_millis(200)), 0);
    let id = submit_code(&r).await;
    let step = {
        let worker = r.worker.clone();
        tokio::spawn(async move { worker.process_one().await.unwrap() })
    };
    wait_until("running", || r.sandbox.calls.load(Ordering::SeqCst) == 1).await;
    r.api_down.store(true, Ordering::SeqCst);
    wait_until("the outcome held", || r.worker.held() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.api_down.store(false, Ordering::SeqCst);
    step.await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(code_result(&t.result).stdout, "hello\n");
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.attempts.load(Ordering::SeqCst), 1);
}

/// A worker told to stop while it holds an outcome through an outage still stores it: a
/// message handed back would run its program a second time (seen once as 1 001 runs of
/// 1 000 tasks in the fault test).
#[tokio::test]
async fn a_stopping_worker_stores_the_outcome_it_holds() {
    let r = rig(Script::Slow(Duration::from_millis(200)), 0);
    let id = submit_code(&r).await;
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (r.worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    wait_until("running", || r.sandbox.calls.load(Ordering::SeqCst) == 1).await;
    r.api_down.store(true, Ordering::SeqCst);
    wait_until("the outcome held", || r.worker.held() == 1).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.api_down.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops once the outcome is stored")
        .unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(code_result(&t.result).stdout, "hello\n");
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 1, "ran once");
    assert!(r.queue.is_empty(), "nothing handed back");
}

/// The container engine goes away: the task is held, not failed.
#[tokio::test]
async fn an_engine_outage_holds_the_task() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    r.sandbox.down.store(true, Ordering::SeqCst);
    let step = {
        let worker = r.worker.clone();
        tokio::spawn(async move { worker.process_one().await.unwrap() })
    };
    wait_until("held", || r.worker.held() == 1).await;
    wait_until("tried a few times", || {
        r.sandbox.calls.load(Ordering::SeqCst) >= 5
    })
    .await;
    r.sandbox.down.store(false, Ordering::SeqCst);
    step.await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(r.attempts.load(Ordering::SeqCst), 1);
}

/// A worker stopping during an outage hands its held delivery back instead of failing it.
#[tokio::test]
async fn stopping_during_an_outage_hands_the_task_back() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    r.api_down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (r.worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    wait_until("held", || r.worker.held() == 1).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the worker stops")
        .unwrap();
    assert_eq!(r.queue.len(), 1, "the message is back for another worker");
    r.api_down.store(false, Ordering::SeqCst);
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
}

/// An outcome the API refuses as invalid is not retried into `failed` after three runs:
/// the program runs once and the task ends `failed` with the API's reason.
#[tokio::test]
async fn an_outcome_the_api_refuses_fails_the_task_once_with_the_reason() {
    let mut r = rig(Script::Hello, 0);
    let control = Arc::new(FlakyControl {
        inner: r.service.clone(),
        fail_commits: AtomicU32::new(0),
        down: r.api_down.clone(),
        refuse_commits: AtomicU32::new(u32::MAX),
        batch_checks: Arc::default(),
        lose_start_answers: AtomicU32::new(0),
    });
    r.worker.control = control;
    let id = submit_code(&r).await;
    r.worker.process_one().await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let result = code_result(&t.result);
    assert_eq!(result.verdict, Verdict::InternalError);
    assert!(
        result.stderr.to_text_lossy().contains("result too big"),
        "{}",
        result.stderr.to_text_lossy()
    );
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 1);
    assert!(r.queue.is_empty());
}

#[tokio::test]
async fn a_task_cancelled_while_queued_never_runs() {
    let r = rig(Script::Hello, 0);
    let id = submit_code(&r).await;
    r.service.cancel(r.owner, id).await.unwrap();
    r.worker.process_one().await.unwrap();
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        r.service.get(r.owner, id).await.unwrap().status,
        TaskStatus::Cancelled
    );
    assert!(r.queue.is_empty());
}

#[tokio::test]
async fn a_running_task_is_stopped_by_cancel() {
    let r = rig(Script::WaitForCancel, 0);
    let id = submit_code(&r).await;
    let service = r.service.clone();
    let owner = r.owner;
    let cancelled_at = tokio::spawn(async move {
        loop {
            if service.get(owner, id).await.unwrap().status == TaskStatus::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        service.cancel(owner, id).await.unwrap();
        Instant::now()
    });
    r.worker.process_one().await.unwrap();
    let stopped = Instant::now();
    let cancelled_at = cancelled_at.await.unwrap();
    assert!(stopped - cancelled_at < Duration::from_secs(1));
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert_eq!(code_result(&t.result).verdict, Verdict::Cancelled);
}

/// The cancel watch costs one call per poll for all of a worker's running tasks, not one
/// per task: eight tasks run at once, each stopped by its cancel, in as many calls as
/// polls passed.
#[tokio::test]
async fn eight_running_tasks_share_one_cancel_check_per_poll() {
    let r = rig(Script::WaitForCancel, 0);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(submit_code(&r).await);
    }
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let worker = r.worker.clone();
            tokio::spawn(async move { worker.process_one().await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    for &id in &ids {
        while r.service.get(r.owner, id).await.unwrap().status != TaskStatus::Running {
            assert!(Instant::now() < deadline, "not all eight started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Twenty polls' time (20 ms each) with all eight running.
    let before = r.batch_checks.load(Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let polls = started.elapsed().as_millis() as u32 / 20;
    let checks = r.batch_checks.load(Ordering::SeqCst) - before;
    assert!(
        (1..=polls + 2).contains(&checks),
        "{checks} checks in {polls} polls for 8 tasks"
    );
    let cancelled_at = Instant::now();
    for &id in &ids {
        r.service.cancel(r.owner, id).await.unwrap();
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    for &id in &ids {
        let t = r.service.get(r.owner, id).await.unwrap();
        assert_eq!(code_result(&t.result).verdict, Verdict::Cancelled);
    }
    // No task left: the watch stops polling.
    let idle = r.batch_checks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(r.batch_checks.load(Ordering::SeqCst) <= idle + 1);
}

fn png_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn small_png() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(3, 2, |x, y| {
        image::Rgba([x as u8 * 50, y as u8 * 90, 1, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn submit_image(r: &Rig, png: &[u8], filter: &str) -> TaskId {
    let req = SubmitRequest {
        kind: Some(TaskKind::Image),
        image_base64: Some(png_b64(png)),
        filter: Some(FilterRequest {
            name: filter.into(),
            parameters: None,
        }),
        ..Default::default()
    };
    r.service.submit(r.owner, req, None).await.unwrap().task.id
}

#[tokio::test]
async fn image_tasks_write_their_output_blob() {
    let r = rig(Script::Hello, 0);
    let input = small_png();
    let id = submit_image(&r, &input, "negative").await;
    r.worker.process_one().await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    let out = r
        .service
        .image_output(&t)
        .await
        .unwrap()
        .expect("output blob");
    let img = image::load_from_memory(&out).unwrap().to_rgba8();
    assert_eq!(img.get_pixel(1, 1).0, [205, 165, 254, 255]);
    assert!(
        r.blobs
            .get(&format!("output/{id}.png"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_undecodable_image_fails_with_a_reason() {
    let r = rig(Script::Hello, 0);
    let png = small_png();
    let broken = &png[..40];
    let id = submit_image(&r, broken, "flipx").await;
    r.worker.process_one().await.unwrap();
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    match t.result {
        Some(TaskResult::Image(res)) => {
            assert_eq!(res.verdict, Verdict::InternalError);
            assert!(res.error.unwrap().contains("decoded"));
        }
        other => panic!("{other:?}"),
    }
}

/// A queue whose deliveries count how often they were extended.
struct CountingConsumer {
    inner: MemoryQueue,
    extends: Arc<AtomicU32>,
}

struct CountingSettle {
    inner: Box<dyn Settle>,
    extends: Arc<AtomicU32>,
}

#[async_trait]
impl Settle for CountingSettle {
    async fn ack(self: Box<Self>) -> Result<(), Error> {
        self.inner.ack().await
    }
    async fn retry(self: Box<Self>) -> Result<(), Error> {
        self.inner.retry().await
    }
    async fn dead_letter(self: Box<Self>) -> Result<(), Error> {
        self.inner.dead_letter().await
    }
    async fn defer(self: Box<Self>, after: Duration) -> Result<(), Error> {
        self.inner.defer(after).await
    }
    async fn extend(&self, by: Duration) -> Result<(), Error> {
        assert_eq!(by, Duration::from_millis(900), "extended by the lease");
        self.extends.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for CountingConsumer {
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>, Error> {
        Ok(self.inner.receive(wait).await?.map(|d| Delivery {
            settle: Box::new(CountingSettle {
                inner: d.settle,
                extends: self.extends.clone(),
            }),
            ..d
        }))
    }
}

#[tokio::test]
async fn a_long_task_keeps_its_delivery_by_extending_the_lease() {
    let mut r = rig(Script::Slow(Duration::from_millis(2000)), 0);
    let extends = Arc::new(AtomicU32::new(0));
    r.worker.consumer = Arc::new(CountingConsumer {
        inner: r.queue.clone(),
        extends: extends.clone(),
    });
    r.worker.config.lease = Some(Duration::from_millis(900));
    let id = submit_code(&r).await;
    r.worker.process_one().await.unwrap();
    assert_eq!(
        r.service.get(r.owner, id).await.unwrap().status,
        TaskStatus::Completed
    );
    // Every 500 ms (a third of 900 ms, at least 500 ms) over 2 s: 3 or 4 extensions.
    let n = extends.load(Ordering::SeqCst);
    assert!((3..=4).contains(&n), "{n} extensions");
    // A quick task is not extended at all.
    let mut quick = rig(Script::Hello, 0);
    let none = Arc::new(AtomicU32::new(0));
    quick.worker.consumer = Arc::new(CountingConsumer {
        inner: quick.queue.clone(),
        extends: none.clone(),
    });
    quick.worker.config.lease = Some(Duration::from_millis(900));
    submit_code(&quick).await;
    quick.worker.process_one().await.unwrap();
    assert_eq!(none.load(Ordering::SeqCst), 0);
}

/// A start the API applied but whose answer was lost (the gateway killed mid-request)
/// leaves the delivery holding a lease it does not know it has: the worker gives it up
/// as the message goes back, so the next delivery runs the task at once rather than
/// waiting 30 s as "leased elsewhere" while deliveries are spent (seen: a task handed back
/// three times by stopping workers, then dead-lettered `failed` without having run).
#[tokio::test]
async fn a_start_whose_answer_was_lost_leaves_no_lease_behind() {
    let mut r = rig(Script::Hello, 0);
    let control = Arc::new(FlakyControl {
        inner: r.service.clone(),
        fail_commits: AtomicU32::new(0),
        down: r.api_down.clone(),
        refuse_commits: AtomicU32::new(0),
        batch_checks: Arc::default(),
        lose_start_answers: AtomicU32::new(1),
    });
    r.worker.control = control;
    let id = submit_code(&r).await;
    r.worker.process_one().await.unwrap();
    assert_eq!(
        r.sandbox.calls.load(Ordering::SeqCst),
        0,
        "not run on the lost answer"
    );
    assert_eq!(r.queue.len(), 1, "the message went back");
    // Another delivery starts it at once: no lease of the first is left.
    let decision = r.service.start(id, uuid::Uuid::new_v4()).await.unwrap();
    assert_eq!(decision, StartDecision::Run);
}

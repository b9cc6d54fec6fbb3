//! The consumer loop driven step by step with `process_one`, against the in-memory queue
//! and stores and a scripted sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use codebox_core::Error;
use codebox_core::domain::TaskKind;
use codebox_core::domain::{CodeResult, Commit, TaskId, TaskResult, TaskStatus, Verdict};
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
}

#[async_trait]
impl Sandbox for FakeSandbox {
    async fn run(&self, _job: &SandboxJob, cancel: CancellationToken) -> Result<CodeResult, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
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

/// Fails the first `fail_commits` commits, as an API that is briefly down would.
struct FlakyControl {
    inner: TaskService,
    fail_commits: AtomicU32,
}

#[async_trait]
impl TaskControl for FlakyControl {
    async fn start(&self, id: TaskId) -> Result<bool, Error> {
        self.inner.start(id).await
    }
    async fn is_cancelled(&self, id: TaskId) -> Result<bool, Error> {
        self.inner.is_cancelled(id).await
    }
    async fn commit(&self, commit: &Commit) -> Result<(), Error> {
        if self
            .fail_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Unavailable("api down".into()));
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
}

fn rig(script: Script, fail_commits: u32) -> Rig {
    let queue = MemoryQueue::new(3);
    let blobs = Arc::new(MemoryBlobStore::default());
    let service = TaskService::new(
        Arc::new(MemoryTaskStore::default()),
        blobs.clone(),
        Arc::new(queue.clone()),
    );
    let sandbox = Arc::new(FakeSandbox {
        script,
        calls: AtomicU32::new(0),
    });
    let worker = Worker {
        consumer: Arc::new(queue.clone()),
        control: Arc::new(FlakyControl {
            inner: service.clone(),
            fail_commits: AtomicU32::new(fail_commits),
        }),
        sandbox: sandbox.clone(),
        blobs: blobs.clone(),
        config: WorkerConfig {
            concurrency: 1,
            max_deliveries: 3,
            cancel_poll: Duration::from_millis(20),
            receive_wait: Duration::from_millis(50),
            lease: None,
        },
    };
    Rig {
        service,
        queue,
        worker,
        sandbox,
        blobs,
        owner: Uuid::new_v4(),
    }
}

async fn submit_code(r: &Rig) -> TaskId {
    let req = SubmitRequest {
        language: Some("python".into()),
        code: Some("print('hello')".into()),
        ..Default::default()
    };
    r.service.submit(r.owner, req, None).await.unwrap().task.id
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

#[tokio::test]
async fn platform_failures_are_retried_then_the_task_fails_visibly() {
    let r = rig(Script::Fail, 0);
    let id = submit_code(&r).await;
    for _ in 0..3 {
        assert_eq!(r.worker.process_one().await.unwrap(), Outcome::Processed);
    }
    assert_eq!(r.sandbox.calls.load(Ordering::SeqCst), 3);
    let t = r.service.get(r.owner, id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let result = code_result(&t.result);
    assert_eq!(result.verdict, Verdict::InternalError);
    assert!(result.stderr.contains("3 attempts"));
    assert!(r.queue.is_empty() && r.queue.dead_letters().is_empty());
}

#[tokio::test]
async fn a_failed_commit_is_redelivered_not_lost() {
    let r = rig(Script::Hello, 1);
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

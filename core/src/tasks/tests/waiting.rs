//! Waiting for a task's end: an end stored in the waiter's own process comes whole,
//! without a read of the store; a waiter elsewhere reads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::*;
use crate::domain::{
    CodeResult, Commit, Task, TaskId, TaskResult, TaskStatus, TaskSummary, Transition,
    TransitionOutcome, UserId, Verdict,
};
use crate::error::Result;
use crate::memory::{MemoryBlobStore, MemoryQueue, MemoryTaskStore};
use crate::ports::{Created, Page, TaskControl, TaskStore};
use crate::time::Timestamp;

/// The in-memory store, counting the reads of whole tasks and of summaries.
#[derive(Default)]
struct Counted {
    inner: MemoryTaskStore,
    gets: AtomicUsize,
    summaries: AtomicUsize,
}

#[async_trait]
impl TaskStore for Counted {
    async fn create(&self, task: &Task, key: Option<&str>, since: Timestamp) -> Result<Created> {
        self.inner.create(task, key, since).await
    }
    async fn get(&self, id: TaskId) -> Result<Option<Task>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn summary(&self, id: TaskId) -> Result<Option<TaskSummary>> {
        self.summaries.fetch_add(1, Ordering::SeqCst);
        self.inner.summary(id).await
    }
    async fn list_by_owner(
        &self,
        owner: UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page> {
        self.inner.list_by_owner(owner, limit, cursor).await
    }
    async fn transition(&self, id: TaskId, transition: &Transition) -> Result<TransitionOutcome> {
        self.inner.transition(id, transition).await
    }
    async fn delete(&self, id: TaskId) -> Result<()> {
        self.inner.delete(id).await
    }
    async fn mark_published(&self, id: TaskId) -> Result<()> {
        self.inner.mark_published(id).await
    }
    async fn unpublished(&self, before: Timestamp, limit: usize) -> Result<Vec<Task>> {
        self.inner.unpublished(before, limit).await
    }
}

fn on(store: &Arc<Counted>) -> TaskService {
    TaskService::new(
        store.clone(),
        Arc::new(MemoryBlobStore::default()),
        Arc::new(MemoryQueue::new(3)),
    )
}

/// Waits for `t`'s end in `svc` once the waiter listens (its first summary read comes
/// after it subscribed), while `worker` starts and commits it.
async fn wait_while_committed(
    svc: &TaskService,
    worker: &TaskService,
    store: &Counted,
    t: &Task,
) -> Task {
    let before = store.summaries.load(Ordering::SeqCst);
    let waiter = {
        let (svc, t) = (svc.clone(), t.clone());
        tokio::spawn(async move { svc.wait_for_end(&t, Duration::from_secs(30)).await })
    };
    for _ in 0..1000 {
        if store.summaries.load(Ordering::SeqCst) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        worker.start(t.id, Uuid::new_v4()).await.unwrap(),
        crate::domain::StartDecision::Run
    );
    let mut result = CodeResult::empty(Verdict::Ok);
    result.stdout = "hello\n".into();
    let commit = Commit {
        task_id: t.id,
        status: TaskStatus::Completed,
        result: TaskResult::Code(result.clone()),
        notify: false,
    };
    worker.commit(&commit).await.unwrap();
    let ended = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(ended.status, TaskStatus::Completed);
    assert_eq!(ended.result, Some(TaskResult::Code(result)));
    assert_eq!(ended.spec, t.spec);
    assert!(ended.finished_at.is_some() && ended.started_at.is_some());
    ended
}

#[tokio::test]
async fn an_end_stored_here_reaches_its_waiter_whole_without_a_read() {
    let store = Arc::new(Counted::default());
    let svc = on(&store);
    let t = svc
        .submit(Uuid::new_v4(), code("python"), None)
        .await
        .unwrap()
        .task;
    let ended = wait_while_committed(&svc, &svc, &store, &t).await;
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        0,
        "the waiter read no task"
    );
    // What the waiter was handed is what the store holds.
    assert_eq!(Some(ended), store.inner.get(t.id).await.unwrap());
}

#[tokio::test]
async fn an_end_stored_elsewhere_is_read() {
    let store = Arc::new(Counted::default());
    let (here, elsewhere) = (on(&store), on(&store));
    let t = here
        .submit(Uuid::new_v4(), code("python"), None)
        .await
        .unwrap()
        .task;
    wait_while_committed(&here, &elsewhere, &store, &t).await;
    assert!(
        store.gets.load(Ordering::SeqCst) >= 1,
        "the waiter read the task"
    );
}

/// A submit that waits listens before its task is published: its end, stored here, reaches
/// it with no read of the store at all (a first read would only meet the worker's start).
/// An idempotent replay's task may have ended long ago: its wait reads first.
#[tokio::test]
async fn a_waiting_submit_reads_nothing_and_a_replay_reads_first() {
    let store = Arc::new(Counted::default());
    let svc = on(&store);
    let owner = Uuid::new_v4();
    let watch = svc.watch_ends();
    let submitted = svc
        .submit(owner, code("python"), Some("once"))
        .await
        .unwrap();
    let t = submitted.task.clone();
    let waiter = {
        let svc = svc.clone();
        tokio::spawn(async move {
            svc.wait_for_submitted(&submitted, watch, Duration::from_secs(30))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    svc.start(t.id, Uuid::new_v4()).await.unwrap();
    svc.commit(&Commit {
        task_id: t.id,
        status: TaskStatus::Completed,
        result: TaskResult::Code(CodeResult::empty(Verdict::Ok)),
        notify: false,
    })
    .await
    .unwrap();
    let ended = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(ended.status, TaskStatus::Completed);
    assert_eq!(
        (
            store.summaries.load(Ordering::SeqCst),
            store.gets.load(Ordering::SeqCst)
        ),
        (0, 0),
        "the waiting submit read the store"
    );

    // The same key again: the ended task, found by a first read, before any pause (no
    // time to wait at all).
    let watch = svc.watch_ends();
    let replayed = svc
        .submit(owner, code("python"), Some("once"))
        .await
        .unwrap();
    assert!(!replayed.created);
    let found = svc
        .wait_for_submitted(&replayed, watch, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        found.map(|t| t.status),
        Some(TaskStatus::Completed),
        "a replay's wait did not read its ended task first"
    );
}

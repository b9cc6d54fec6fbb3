use super::*;
use std::sync::Arc;

use base64::Engine;
use uuid::Uuid;

use crate::domain::{
    Commit, Compiler, ImageResult, Limits, StartDecision, Task, TaskKind, TaskResult, TaskSpec,
    TaskStatus, Verdict,
};
use crate::error::Error;
use crate::png;
use crate::ports::{TaskControl, TaskStore};
use crate::time;

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
        notify: false,
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
    svc.commit(&completed(t.id)).await.unwrap();
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
    svc.commit(&completed(t.id)).await.unwrap();
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

/// A finished task's summary is read from the store once, then answered from memory
/// (here: still answered after the store lost the task); a task not yet finished is read
/// every time, so its changes show at once; the owner check holds for a kept summary.
#[tokio::test]
async fn a_finished_summary_is_kept_and_an_unfinished_one_read_each_time() {
    let (svc, _q) = service();
    let owner = Uuid::new_v4();
    let t = svc.submit(owner, code("python"), None).await.unwrap().task;
    assert_eq!(
        svc.summary(owner, t.id).await.unwrap().status,
        TaskStatus::Queued
    );
    assert_eq!(
        svc.start(t.id, Uuid::new_v4()).await.unwrap(),
        StartDecision::Run
    );
    assert_eq!(
        svc.summary(owner, t.id).await.unwrap().status,
        TaskStatus::Running,
        "an unfinished summary is not kept"
    );
    svc.commit(&completed(t.id)).await.unwrap();
    let finished = svc.summary(owner, t.id).await.unwrap();
    assert_eq!(finished.status, TaskStatus::Completed);
    svc.tasks.delete(t.id).await.unwrap();
    assert_eq!(svc.summary(owner, t.id).await.unwrap(), finished);
    assert!(matches!(
        svc.summary(Uuid::new_v4(), t.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        svc.get(owner, t.id).await,
        Err(Error::NotFound(_))
    ));
}

/// A worker's commit of `id` completed with no output.
fn completed(id: crate::domain::TaskId) -> Commit {
    Commit {
        task_id: id,
        status: TaskStatus::Completed,
        result: TaskResult::Code(crate::domain::CodeResult::empty(Verdict::Ok)),
        notify: false,
    }
}

//! Fair shares: a user's tasks wait behind other users' (their start is deferred).

use super::*;
use uuid::Uuid;

use crate::domain::{CodeResult, Commit, StartDecision, TaskResult, TaskStatus, Verdict};
use crate::ports::TaskControl;

fn done(id: Uuid) -> Commit {
    Commit {
        task_id: id,
        status: TaskStatus::Completed,
        result: TaskResult::Code(CodeResult::empty(Verdict::Ok)),
        notify: false,
    }
}

/// A user running one task already waits once behind the queue; at the cap, always.
#[tokio::test]
async fn a_users_second_task_waits_once_and_past_the_cap_always() {
    let (svc, _q) = service();
    let svc = svc.with_running_cap(2);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut mine = Vec::new();
    for _ in 0..4 {
        mine.push(svc.submit(a, code("python"), None).await.unwrap().task.id);
    }
    let theirs = svc.submit(b, code("python"), None).await.unwrap().task.id;
    let first = Uuid::new_v4();
    assert_eq!(svc.start(mine[0], first).await.unwrap(), StartDecision::Run);
    assert_eq!(
        svc.start(mine[1], Uuid::new_v4()).await.unwrap(),
        StartDecision::Defer,
        "a second task, never deferred, goes behind the queue once"
    );
    assert_eq!(
        svc.get(a, mine[1]).await.unwrap().status,
        TaskStatus::Queued,
        "a deferred task stays queued"
    );
    assert_eq!(
        svc.start(theirs, Uuid::new_v4()).await.unwrap(),
        StartDecision::Run,
        "a user running nothing starts at once"
    );
    assert_eq!(
        svc.start_delivery(mine[1], Uuid::new_v4(), 1)
            .await
            .unwrap(),
        StartDecision::Run,
        "deferred once, it runs under the cap"
    );
    assert_eq!(
        svc.start_delivery(mine[2], Uuid::new_v4(), 5)
            .await
            .unwrap(),
        StartDecision::Defer,
        "at the cap, however often it was deferred"
    );
    // A run asking again for the task it started (its answer was lost) is not held back.
    assert_eq!(svc.start(mine[0], first).await.unwrap(), StartDecision::Run);
    // A finished task frees a place.
    svc.commit(&done(mine[0])).await.unwrap();
    assert_eq!(
        svc.start_delivery(mine[2], Uuid::new_v4(), 5)
            .await
            .unwrap(),
        StartDecision::Run
    );
    // A worker that knows no deferral is never told to defer (it would drop the task).
    assert_eq!(
        svc.start_run(mine[3], Uuid::new_v4(), None).await.unwrap(),
        StartDecision::Run
    );
}

/// A task whose lease lapsed (its worker died) is taken over whatever its owner runs.
#[tokio::test]
async fn a_lapsed_run_is_taken_over_at_the_cap() {
    let (svc, _q) = service();
    let svc = svc.with_running_cap(1);
    let a = Uuid::new_v4();
    let t = svc.submit(a, code("python"), None).await.unwrap().task.id;
    let dead = Uuid::new_v4();
    assert_eq!(svc.start(t, dead).await.unwrap(), StartDecision::Run);
    svc.release(t, dead).await.unwrap();
    assert_eq!(
        svc.start(t, Uuid::new_v4()).await.unwrap(),
        StartDecision::Run
    );
}

#[tokio::test]
async fn no_cap_defers_nothing() {
    let (svc, _q) = service();
    let svc = svc.with_running_cap(0);
    let a = Uuid::new_v4();
    for _ in 0..5 {
        let t = svc.submit(a, code("python"), None).await.unwrap().task.id;
        assert_eq!(
            svc.start(t, Uuid::new_v4()).await.unwrap(),
            StartDecision::Run
        );
    }
}

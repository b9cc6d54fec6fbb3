use chrono::Duration;
use uuid::Uuid;

use crate::domain::{
    CodeResult, CodeSpec, Limits, RUN_LEASE, Session, Task, TaskKind, TaskResult, TaskSpec,
    TaskStatus, Transition, TransitionOutcome, User, Verdict,
};
use crate::error::Error;
use crate::ports::{BlobStore, Created, SessionStore, TaskStore, UserStore};
use crate::time;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..12])
}

fn user(name: &str) -> User {
    User {
        id: Uuid::new_v4(),
        username: name.to_owned(),
        password_hash: "$2b$04$abcdefghijklmnopqrstuu5xAvu5Yd0hV2v3Pj3Vw8JqB9H1m0M6G".into(),
        created_at: time::now(),
    }
}

pub async fn user_store(store: &dyn UserStore) {
    let alice = user(&unique("alice"));
    store.create(&alice).await.unwrap();
    assert_eq!(store.get(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.get_by_username(&alice.username).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_by_username(&unique("nobody")).await.unwrap(),
        None
    );
    assert_eq!(store.get(Uuid::new_v4()).await.unwrap(), None);

    let mut twin = user(&alice.username);
    twin.id = Uuid::new_v4();
    assert!(
        matches!(store.create(&twin).await, Err(Error::Conflict(_))),
        "a taken username MUST be a Conflict"
    );
    assert_eq!(store.get(twin.id).await.unwrap(), None);

    // Case matters: "Alice-x" and "alice-x" are two users.
    let upper = user(&alice.username.to_uppercase());
    store.create(&upper).await.unwrap();
}

pub async fn session_store(store: &dyn SessionStore) {
    let live = Session {
        jti: unique("jti"),
        user_id: Uuid::new_v4(),
        expires_at: time::now() + Duration::hours(1),
    };
    store.put(&live).await.unwrap();
    assert_eq!(store.get(&live.jti).await.unwrap(), Some(live.clone()));
    store.revoke(&live.jti).await.unwrap();
    assert_eq!(store.get(&live.jti).await.unwrap(), None);
    store.revoke(&live.jti).await.unwrap();
    store.revoke(&unique("never-was")).await.unwrap();

    let expired = Session {
        jti: unique("jti"),
        user_id: Uuid::new_v4(),
        expires_at: time::now() - Duration::seconds(1),
    };
    store.put(&expired).await.unwrap();
    assert_eq!(
        store.get(&expired.jti).await.unwrap(),
        None,
        "an expired session MUST read as absent"
    );
}

pub async fn blob_store(store: &dyn BlobStore) {
    let key = format!("conformance/{}.bin", Uuid::new_v4());
    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    store.put(&key, bytes.clone()).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(bytes));
    store.put(&key, vec![1, 2, 3]).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(vec![1, 2, 3]));
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.delete(&key).await.unwrap();

    // A client's blob read with a bound: whole up to it, refused past it, empty as empty.
    assert_eq!(store.get_at_most(&key, 10).await.unwrap(), None);
    let ten: Vec<u8> = (0..10).collect();
    store.put(&key, ten.clone()).await.unwrap();
    assert_eq!(
        store.get_at_most(&key, 10).await.unwrap(),
        Some(ten.clone())
    );
    assert_eq!(store.get_at_most(&key, 1000).await.unwrap(), Some(ten));
    assert!(matches!(
        store.get_at_most(&key, 9).await,
        Err(crate::Error::TooLarge(_))
    ));
    store.put(&key, Vec::new()).await.unwrap();
    assert_eq!(store.get_at_most(&key, 9).await.unwrap(), Some(Vec::new()));
    store.delete(&key).await.unwrap();

    // Expiry by age under a prefix (where the store does not expire blobs itself).
    let prefix = format!("conformance-{}/", Uuid::new_v4().simple());
    let old = format!("{prefix}a/{}.png", Uuid::new_v4());
    let other = format!("conformance/{}.png", Uuid::new_v4());
    store.put(&old, vec![1]).await.unwrap();
    store.put(&other, vec![2]).await.unwrap();
    let earlier = crate::time::now() - chrono::Duration::hours(1);
    if let Some(n) = store.delete_older_than(&prefix, earlier).await.unwrap() {
        assert_eq!(n, 0, "nothing under the prefix is an hour old");
        assert_eq!(store.get(&old).await.unwrap(), Some(vec![1]));
        let later = crate::time::now() + chrono::Duration::seconds(5);
        let n = store.delete_older_than(&prefix, later).await.unwrap();
        assert_eq!(n, Some(1));
        assert_eq!(store.get(&old).await.unwrap(), None, "expired");
        assert_eq!(
            store.get(&other).await.unwrap(),
            Some(vec![2]),
            "outside the prefix: kept"
        );
        assert_eq!(
            store.delete_older_than(&prefix, later).await.unwrap(),
            Some(0)
        );
    }
    store.delete(&old).await.unwrap();
    store.delete(&other).await.unwrap();
}

fn code_task(owner: Uuid) -> Task {
    Task::new(
        owner,
        TaskSpec::Code(CodeSpec {
            language: "python".into(),
            compiler: None,
            code: "print('hi')".into(),
            stdin: "é\n".into(),
            args: vec!["a b".into()],
            limits: Limits::DEFAULT,
            ..Default::default()
        }),
    )
}

pub async fn task_store(store: &dyn TaskStore) {
    create_and_get(store).await;
    idempotency(store).await;
    listing(store).await;
    transitions(store).await;
    leases(store).await;
    delete(store).await;
    largest(store).await;
    any_bytes(store).await;
    active_count(store).await;
    created_within(store).await;
    outbox(store).await;
}

/// `create_within` stores a task while its owner has fewer than `active_below` tasks
/// queued or running, and nothing at or past it (`Held`); a finished task and another
/// owner's do not count; with an idempotency key, the same bound.
async fn created_within(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let owner = Uuid::new_v4();
    let first = code_task(owner);
    assert_eq!(
        store.create_within(&first, None, since, 2).await.unwrap(),
        Created::New
    );
    let second = code_task(owner);
    assert_eq!(
        store.create_within(&second, None, since, 2).await.unwrap(),
        Created::New
    );
    // Someone else's tasks do not count against this owner.
    let others = code_task(Uuid::new_v4());
    store.create(&others, None, since).await.unwrap();
    let held = code_task(owner);
    assert_eq!(
        store.create_within(&held, None, since, 2).await.unwrap(),
        Created::Held,
        "a task MUST be held while its owner has 2 queued or running"
    );
    assert_eq!(
        store.get(held.id).await.unwrap(),
        None,
        "a held task MUST NOT be stored"
    );
    let keyed = code_task(owner);
    assert_eq!(
        store
            .create_within(&keyed, Some("within"), since, 2)
            .await
            .unwrap(),
        Created::Held,
        "the bound holds with an idempotency key too"
    );
    assert_eq!(store.get(keyed.id).await.unwrap(), None);
    // A finished task frees its place; a running one does not.
    store
        .transition(first.id, &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap();
    assert_eq!(
        store.create_within(&held, None, since, 2).await.unwrap(),
        Created::Held
    );
    let done = Transition::finish(
        TaskStatus::Completed,
        TaskResult::Code(CodeResult::empty(Verdict::Ok)),
        time::now(),
    );
    store.transition(first.id, &done).await.unwrap();
    assert_eq!(
        store.create_within(&held, None, since, 2).await.unwrap(),
        Created::New,
        "a finished task MUST NOT count"
    );
    assert_eq!(
        store.get(held.id).await.unwrap().map(|t| t.id),
        Some(held.id)
    );
    for id in [first.id, second.id, held.id, others.id] {
        store.delete(id).await.unwrap();
    }
}

/// A stored task is unpublished until marked; the sweeper finds it by its age, whole.
async fn outbox(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let ids = |tasks: Vec<Task>| tasks.into_iter().map(|t| t.id).collect::<Vec<_>>();
    // Created long ago, at an instant of its own: no other task of the suite is older.
    let mut task = code_task(Uuid::new_v4());
    let offset = i64::from(task.id.as_u128() as u32 % 1_000_000_000);
    task.created_at = chrono::DateTime::from_timestamp_millis(978_307_200_000 + offset)
        .expect("a timestamp in 2001");
    assert_eq!(
        store.create(&task, None, since).await.unwrap(),
        Created::New
    );
    let just_after = task.created_at + Duration::milliseconds(1);
    assert!(
        !ids(store.unpublished(task.created_at, 1000).await.unwrap()).contains(&task.id),
        "created at the bound is not before it"
    );
    let found = store.unpublished(just_after, 1000).await.unwrap();
    assert_eq!(
        found.iter().find(|t| t.id == task.id),
        Some(&task),
        "an unpublished task MUST be found whole"
    );
    store.mark_published(task.id).await.unwrap();
    assert!(!ids(store.unpublished(just_after, 1000).await.unwrap()).contains(&task.id));
    store.mark_published(task.id).await.unwrap();
    store.mark_published(Uuid::new_v4()).await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), Some(task.clone()));
    store.delete(task.id).await.unwrap();

    // Removed before it was published (its queue refused it): out of the outbox too.
    let mut dropped = code_task(Uuid::new_v4());
    dropped.created_at = task.created_at;
    store.create(&dropped, None, since).await.unwrap();
    store.delete(dropped.id).await.unwrap();
    assert!(!ids(store.unpublished(just_after, 1000).await.unwrap()).contains(&dropped.id));
}

async fn create_and_get(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let task = code_task(Uuid::new_v4());
    assert_eq!(
        store.create(&task, None, since).await.unwrap(),
        Created::New
    );
    assert_eq!(store.get(task.id).await.unwrap(), Some(task.clone()));
    assert_eq!(store.summary(task.id).await.unwrap(), Some(task.summary()));
    assert_eq!(store.summary(Uuid::new_v4()).await.unwrap(), None);
    assert!(
        matches!(
            store.create(&task, None, since).await,
            Err(Error::Conflict(_))
        ),
        "a duplicate id MUST be a Conflict"
    );
    assert_eq!(store.get(Uuid::new_v4()).await.unwrap(), None);
}

async fn idempotency(store: &dyn TaskStore) {
    let owner = Uuid::new_v4();
    let key = unique("key");
    let since = time::now() - Duration::hours(24);
    let first = code_task(owner);
    assert_eq!(
        store.create(&first, Some(&key), since).await.unwrap(),
        Created::New
    );
    let second = code_task(owner);
    assert_eq!(
        store.create(&second, Some(&key), since).await.unwrap(),
        Created::Existing(Box::new(first.clone()))
    );
    assert_eq!(store.get(second.id).await.unwrap(), None);
    // Another owner with the same key is a different task.
    let other = code_task(Uuid::new_v4());
    assert_eq!(
        store.create(&other, Some(&key), since).await.unwrap(),
        Created::New
    );
    // A key older than the window is used anew.
    let later = code_task(owner);
    let window_start = time::now() + Duration::seconds(1);
    assert_eq!(
        store
            .create(&later, Some(&key), window_start)
            .await
            .unwrap(),
        Created::New
    );
}

async fn listing(store: &dyn TaskStore) {
    let owner = Uuid::new_v4();
    let since = time::now() - Duration::hours(24);
    let mut made = Vec::new();
    for i in 0..7 {
        let mut t = code_task(owner);
        // Two tasks share a timestamp to check the id tie-break.
        t.created_at = time::now() + Duration::milliseconds(i64::from(i / 2 * 10));
        store.create(&t, None, since).await.unwrap();
        made.push(t);
    }
    store
        .create(&code_task(Uuid::new_v4()), None, since)
        .await
        .unwrap();
    made.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id)));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = store
            .list_by_owner(owner, 3, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|t| t.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<_> = made.iter().map(|t| t.id).collect();
    assert_eq!(
        seen, expected,
        "pages MUST list newest first, each task once"
    );

    let all = store.list_by_owner(owner, 7, None).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.next_cursor, None, "no cursor after the last page");
    let none = store.list_by_owner(Uuid::new_v4(), 5, None).await.unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
    assert!(matches!(
        store.list_by_owner(owner, 3, Some("garbage!")).await,
        Err(Error::Invalid(_))
    ));
}

async fn transitions(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let task = code_task(Uuid::new_v4());
    store.create(&task, None, since).await.unwrap();

    let started = time::now();
    let TransitionOutcome::Applied(t) = store
        .transition(task.id, &Transition::start(Uuid::new_v4(), started))
        .await
        .unwrap()
    else {
        panic!("queued → running MUST apply");
    };
    assert_eq!(t.status, TaskStatus::Running);
    assert_eq!(t.started_at, Some(started));

    let TransitionOutcome::Rejected(t) = store
        .transition(task.id, &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap()
    else {
        panic!("running → running MUST be rejected");
    };
    assert_eq!(
        t.started_at,
        Some(started),
        "a rejected change MUST change nothing"
    );

    let result = TaskResult::Code(CodeResult {
        stdout: "hi\n".into(),
        exit_code: Some(0),
        time_ms: Some(12),
        ..CodeResult::empty(Verdict::Ok)
    });
    let finished = time::now();
    let done = Transition::finish(TaskStatus::Completed, result.clone(), finished);
    let TransitionOutcome::Applied(t) = store.transition(task.id, &done).await.unwrap() else {
        panic!("running → completed MUST apply");
    };
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(
        store.get(task.id).await.unwrap().unwrap().result,
        Some(result.clone())
    );
    assert_eq!(t.started_at, Some(started), "fields left None MUST be kept");
    assert_eq!(t.finished_at, Some(finished));

    let late = Transition::finish(
        TaskStatus::Failed,
        TaskResult::Code(CodeResult::empty(Verdict::InternalError)),
        time::now(),
    );
    let TransitionOutcome::Rejected(t) = store.transition(task.id, &late).await.unwrap() else {
        panic!("a finished task MUST NOT move again");
    };
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(
        store.get(task.id).await.unwrap().unwrap().result,
        Some(result)
    );

    assert!(matches!(
        store.transition(Uuid::new_v4(), &late).await,
        Err(Error::NotFound(_))
    ));

    // A finish checks the task's kind itself, and gives a task never started its start.
    let queued = code_task(Uuid::new_v4());
    store.create(&queued, None, since).await.unwrap();
    let image = Transition::finish(
        TaskStatus::Completed,
        TaskResult::without_output(TaskKind::Image, Verdict::Ok, None),
        time::now(),
    );
    let TransitionOutcome::Rejected(t) = store.transition(queued.id, &image).await.unwrap() else {
        panic!("an image's result MUST NOT finish a code task");
    };
    assert_eq!((t.status, t.kind), (TaskStatus::Queued, TaskKind::Code));
    assert_eq!(store.get(queued.id).await.unwrap().unwrap().result, None);
    let at = time::now();
    let failed = Transition::finish(
        TaskStatus::Failed,
        TaskResult::Code(CodeResult::empty(Verdict::InternalError)),
        at,
    );
    let TransitionOutcome::Applied(t) = store.transition(queued.id, &failed).await.unwrap() else {
        panic!("queued → failed MUST apply");
    };
    assert_eq!(
        (t.started_at, t.finished_at),
        (Some(at), Some(at)),
        "a task ended before it started MUST get its end as its start"
    );
}

/// A start takes a lease: while it holds (or is renewed), another run's start is refused
/// and the holder's own is not; once it lapsed (its worker died) or was given up, a start
/// takes the task over. Only the holder renews or gives it up.
async fn leases(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let task = code_task(Uuid::new_v4());
    store.create(&task, None, since).await.unwrap();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let t0 = time::now();
    let applies = |t: Transition| async move {
        matches!(
            store.transition(task.id, &t).await.unwrap(),
            TransitionOutcome::Applied(_)
        )
    };
    assert!(applies(Transition::start(first, t0)).await);
    let within = t0 + RUN_LEASE - Duration::seconds(1);
    assert!(
        !applies(Transition::start(second, within)).await,
        "a start MUST NOT take a task another run's lease holds"
    );
    assert!(
        applies(Transition::start(first, within)).await,
        "the holder's own start again MUST apply"
    );
    assert!(
        !applies(Transition::renew(second, within)).await,
        "only the holder MUST renew"
    );
    assert!(applies(Transition::renew(first, within)).await);
    let past_first = within + RUN_LEASE - Duration::seconds(1);
    assert!(
        !applies(Transition::start(second, past_first)).await,
        "a renewed lease MUST hold past the first deadline"
    );
    let lapsed = within + RUN_LEASE + Duration::seconds(1);
    let TransitionOutcome::Applied(t) = store
        .transition(task.id, &Transition::start(second, lapsed))
        .await
        .unwrap()
    else {
        panic!("a start MUST take over a task whose lease lapsed");
    };
    assert_eq!(t.status, TaskStatus::Running);
    assert_eq!(t.started_at, Some(lapsed));
    assert!(
        !applies(Transition::release(first, lapsed)).await,
        "only the holder MUST give a lease up"
    );
    assert!(!applies(Transition::start(first, lapsed)).await);
    assert!(applies(Transition::release(second, lapsed)).await);
    assert!(
        !applies(Transition::renew(second, lapsed)).await,
        "a lease given up MUST NOT come back by a late renewal"
    );
    assert!(
        applies(Transition::start(first, lapsed)).await,
        "a lease given up MUST free the task at once"
    );
    let done = Transition::finish(
        TaskStatus::Completed,
        TaskResult::Code(CodeResult::empty(Verdict::Ok)),
        lapsed,
    );
    assert!(applies(done).await);
    assert!(
        !applies(Transition::renew(first, lapsed)).await,
        "a renewal MUST NOT touch a finished task"
    );
    assert!(!applies(Transition::start(second, lapsed + RUN_LEASE * 2)).await);
    assert_eq!(
        store.summary(task.id).await.unwrap().unwrap().status,
        TaskStatus::Completed
    );
}

async fn delete(store: &dyn TaskStore) {
    let owner = Uuid::new_v4();
    let key = unique("key");
    let since = time::now() - Duration::hours(24);
    let task = code_task(owner);
    store.create(&task, Some(&key), since).await.unwrap();
    store.delete(task.id).await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), None);
    let page = store.list_by_owner(owner, 10, None).await.unwrap();
    assert!(page.items.is_empty());
    let again = code_task(owner);
    assert_eq!(
        store.create(&again, Some(&key), since).await.unwrap(),
        Created::New,
        "a deleted task's idempotency key MUST be free again"
    );
    store.delete(Uuid::new_v4()).await.unwrap();
}

/// `count_active` counts the owner's queued and running tasks only, up to `at_most`;
/// `count_running` the running ones; `start_within` holds a queued task's start to its
/// owner's running count.
async fn active_count(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let owner = Uuid::new_v4();
    assert_eq!(store.count_active(owner, 10).await.unwrap(), 0);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let t = code_task(owner);
        store.create(&t, None, since).await.unwrap();
        ids.push(t.id);
    }
    // Someone else's task does not count.
    store
        .create(&code_task(Uuid::new_v4()), None, since)
        .await
        .unwrap();
    store
        .transition(ids[0], &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap();
    for id in &ids[1..3] {
        let done = Transition::finish(
            TaskStatus::Completed,
            TaskResult::Code(CodeResult::empty(Verdict::Ok)),
            time::now(),
        );
        store.transition(*id, &done).await.unwrap();
    }
    assert_eq!(
        store.count_active(owner, 10).await.unwrap(),
        3,
        "one running and two queued MUST count, the finished MUST NOT"
    );
    assert!(store.count_active(owner, 2).await.unwrap() >= 2);
    assert_eq!(
        store.count_running(owner, 10).await.unwrap(),
        1,
        "only the running one MUST count as running"
    );
    store
        .transition(ids[3], &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap();
    assert_eq!(store.count_running(owner, 10).await.unwrap(), 2);
    assert_eq!(store.count_running(owner, 1).await.unwrap(), 1);
    assert_eq!(store.count_running(Uuid::new_v4(), 10).await.unwrap(), 0);
    // A queued task's start is held while its owner runs `running_below` tasks or more
    // (two run now), and nothing else is changed by the hold.
    let start = || Transition::start(Uuid::new_v4(), time::now());
    for below in [1, 2] {
        match store.start_within(ids[4], &start(), below).await.unwrap() {
            TransitionOutcome::Rejected(t) => assert_eq!(
                (t.status, t.started_at),
                (TaskStatus::Queued, None),
                "a held start MUST leave its task queued"
            ),
            TransitionOutcome::Applied(_) => {
                panic!("a queued task's start MUST be held while its owner runs {below} or more")
            }
        }
    }
    // Another owner's running tasks do not count; a task running already (a lapsed lease
    // taken over) is never held.
    let other = code_task(Uuid::new_v4());
    store.create(&other, None, since).await.unwrap();
    assert!(matches!(
        store.start_within(other.id, &start(), 1).await.unwrap(),
        TransitionOutcome::Applied(t) if t.status == TaskStatus::Running
    ));
    let lapsed = Transition::start(Uuid::new_v4(), time::now() + RUN_LEASE * 2);
    assert!(
        matches!(
            store.start_within(ids[0], &lapsed, 1).await.unwrap(),
            TransitionOutcome::Applied(_)
        ),
        "a running task whose lease lapsed MUST be taken over whatever its owner runs"
    );
    assert!(matches!(
        store.start_within(ids[4], &start(), 3).await.unwrap(),
        TransitionOutcome::Applied(t) if t.status == TaskStatus::Running
    ));
    assert!(matches!(
        store.start_within(Uuid::new_v4(), &start(), 1).await,
        Err(Error::NotFound(_))
    ));
    store.delete(other.id).await.unwrap();
    for id in ids {
        store.delete(id).await.unwrap();
    }
}

/// `len` bytes cycling through 0–255.
pub fn every_byte(len: usize) -> crate::bytes::Bytes {
    (0..=255u8).cycle().take(len).collect::<Vec<_>>().into()
}

/// Output a program may write — NUL, control bytes, bytes that are not UTF-8 — is stored
/// and read back byte for byte, and so is such stdin.
async fn any_bytes(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let mut task = code_task(Uuid::new_v4());
    if let TaskSpec::Code(spec) = &mut task.spec {
        spec.stdin = b"a\x00b\xff\n".as_slice().into();
    }
    store.create(&task, None, since).await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), Some(task.clone()));
    store
        .transition(task.id, &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap();
    let result = TaskResult::Code(CodeResult {
        stdout: b"a\x00b".as_slice().into(),
        stderr: every_byte(256),
        compile_output: Some(b"\xfe\xff\x1b[31m".as_slice().into()),
        ..CodeResult::empty(Verdict::Ok)
    });
    let done = Transition::finish(TaskStatus::Completed, result.clone(), time::now());
    let TransitionOutcome::Applied(t) = store.transition(task.id, &done).await.unwrap() else {
        panic!("running → completed MUST apply");
    };
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(
        store.get(task.id).await.unwrap().unwrap().result,
        Some(result)
    );
    store.delete(task.id).await.unwrap();
}

/// The largest inputs and outputs the API accepts round-trip (a backend with small items,
/// like DynamoDB, keeps them elsewhere).
async fn largest(store: &dyn TaskStore) {
    let since = time::now() - Duration::hours(24);
    let owner = Uuid::new_v4();
    let mut task = code_task(owner);
    if let TaskSpec::Code(spec) = &mut task.spec {
        spec.code = "#".repeat(crate::tasks::MAX_CODE_BYTES);
        // Every byte, as a program may read it: the worst case for any encoding.
        spec.stdin = every_byte(crate::tasks::MAX_STDIN_BYTES);
    }
    store.create(&task, None, since).await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), Some(task.clone()));
    store
        .transition(task.id, &Transition::start(Uuid::new_v4(), time::now()))
        .await
        .unwrap();
    let result = TaskResult::Code(CodeResult {
        stdout: every_byte(1024 * 1024),
        // JSON escapes each of these as six characters.
        stderr: vec![1u8; 1024 * 1024].into(),
        compile_output: Some(every_byte(64 * 1024)),
        ..CodeResult::empty(Verdict::Ok)
    });
    let done = Transition::finish(TaskStatus::Completed, result.clone(), time::now());
    let TransitionOutcome::Applied(t) = store.transition(task.id, &done).await.unwrap() else {
        panic!("running → completed MUST apply");
    };
    assert_eq!(store.summary(task.id).await.unwrap(), Some(t.clone()));
    // A list carries the summary; the result is read whole by id.
    let page = store.list_by_owner(owner, 10, None).await.unwrap();
    assert_eq!(page.items, vec![t]);
    let read = store.get(task.id).await.unwrap().unwrap();
    assert_eq!(read.result, Some(result));
    store.delete(task.id).await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), None);
}

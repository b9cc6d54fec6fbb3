//! The workers' routes: cancel checks, leases, the credential, language versions, outcomes
//! in blobs.

use super::*;

/// A worker's cancel watch asks about all its running tasks in one call: it hears of the
/// cancelled ones and of those gone, not of the others; 1–256 ids, the worker's
/// credential only.
#[tokio::test]
async fn workers_ask_which_of_their_tasks_were_cancelled_in_one_call() {
    let app = app();
    let token = login_as(&app, "wanda").await;
    let running = submit(&app, &token).await;
    let cancelled = submit(&app, &token).await;
    for id in [&running, &cancelled] {
        assert_eq!(start(&app, id).await.status, StatusCode::OK);
    }
    let r = send(
        &app,
        req("DELETE", &format!("/task/{cancelled}"), Some(&token), None),
    )
    .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let gone = uuid::Uuid::new_v4().to_string();
    let ask = |ids: Vec<String>| json!({ "task_ids": ids });
    let r = send(
        &app,
        req(
            "POST",
            "/commit/cancelled",
            Some(WORKER),
            Some(ask(vec![running.clone(), cancelled.clone(), gone.clone()])),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let mut answer: Vec<String> = r.json()["cancelled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    answer.sort();
    let mut want = vec![cancelled.clone(), gone];
    want.sort();
    assert_eq!(answer, want);
    for bad in [vec![], vec![running.clone(); 257]] {
        send(
            &app,
            req("POST", "/commit/cancelled", Some(WORKER), Some(ask(bad))),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
    send(
        &app,
        req(
            "POST",
            "/commit/cancelled",
            Some(&token),
            Some(ask(vec![running])),
        ),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

/// A worker's start names its run's lease: another run's start is told the task is
/// leased (not to run it, to keep its message); the holder renews or gives it up.
#[tokio::test]
async fn a_start_takes_a_lease_that_only_its_holder_renews_or_gives_up() {
    let app = app();
    let token = login_as(&app, "lena").await;
    let id = submit(&app, &token).await;
    let (first, second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let start_as = |lease: uuid::Uuid| {
        let app = app.clone();
        let id = id.clone();
        async move {
            let body = json!({"task_id": id, "lease": lease});
            let r = send(&app, req("POST", "/commit/start", Some(WORKER), Some(body))).await;
            assert_eq!(r.status, StatusCode::OK);
            (r.json()["run"].clone(), r.json()["leased"].clone())
        }
    };
    assert_eq!(start_as(first).await, (json!(true), json!(false)));
    assert_eq!(
        start_as(first).await,
        (json!(true), json!(false)),
        "retried"
    );
    assert_eq!(start_as(second).await, (json!(false), json!(true)));
    // A worker from before leases names none: told to run a running task, as it was.
    let legacy = send(
        &app,
        req(
            "POST",
            "/commit/start",
            Some(WORKER),
            Some(json!({"task_id": id})),
        ),
    )
    .await;
    assert_eq!(
        (
            legacy.json()["run"].clone(),
            legacy.json()["leased"].clone()
        ),
        (json!(true), json!(false))
    );
    let lease = |lease: uuid::Uuid, release: bool| json!({"leases": [{"task_id": id, "lease": lease}], "release": release});
    for body in [lease(first, false), lease(second, true)] {
        let r = send(&app, req("POST", "/commit/lease", Some(WORKER), Some(body))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        start_as(second).await,
        (json!(false), json!(true)),
        "not its lease"
    );
    let body = lease(first, true);
    send(&app, req("POST", "/commit/lease", Some(WORKER), Some(body))).await;
    assert_eq!(
        start_as(second).await,
        (json!(true), json!(false)),
        "given up"
    );
    for bad in [json!({"leases": []}), json!({"task_ids": [id]})] {
        send(&app, req("POST", "/commit/lease", Some(WORKER), Some(bad)))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    send(
        &app,
        req(
            "POST",
            "/commit/lease",
            Some(&token),
            Some(lease(second, false)),
        ),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn commit_needs_the_worker_credential() {
    let app = app();
    let token = login_as(&app, "ivan").await;
    let id = submit(&app, &token).await;
    let body = code_commit(&id, Verdict::Ok, "x");
    send(
        &app,
        req("POST", "/commit", Some(&token), Some(body.clone())),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    send(&app, req("POST", "/commit", None, Some(body.clone())))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    send(
        &app,
        req("POST", "/commit", Some("wrong-worker-token"), Some(body)),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    send(
        &app,
        req("GET", &format!("/commit/{id}"), Some(&token), None),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    let unknown = code_commit(&uuid::Uuid::new_v4().to_string(), Verdict::Ok, "x");
    send(&app, req("POST", "/commit", Some(WORKER), Some(unknown)))
        .await
        .problem(StatusCode::NOT_FOUND);
    // The worker's readiness probe: its credential, and the store behind it.
    let r = send(&app, req("GET", "/commit/ping", Some(WORKER), None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    send(&app, req("GET", "/commit/ping", Some(&token), None))
        .await
        .problem(StatusCode::FORBIDDEN);
    send(
        &app,
        req("GET", "/commit/ping", Some("wrong-worker-token"), None),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    let mut wrong_status = code_commit(&id, Verdict::Ok, "x");
    wrong_status["status"] = json!("running");
    send(
        &app,
        req("POST", "/commit", Some(WORKER), Some(wrong_status)),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn workers_report_language_versions() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    // Another process of the same deployment (on AWS: the `languages` function), which
    // never hears a worker, has read the stored listing before there was one.
    let elsewhere = codebox_functions::handlers::languages::router(state_with(3600, &backends));
    let before: Value = send(&elsewhere, req("GET", "/languages", None, None))
        .await
        .json();
    assert_eq!(before[0]["version"], Value::Null);
    let token = login_as(&app, "olga").await;
    let mut listing: Value = send(&app, req("GET", "/languages", None, None))
        .await
        .json();
    listing[0]["version"] = json!("3.11.2");
    send(
        &app,
        req(
            "PUT",
            "/commit/languages",
            Some(&token),
            Some(listing.clone()),
        ),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    let r = send(
        &app,
        req("PUT", "/commit/languages", Some(WORKER), Some(listing)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let now: Value = send(&app, req("GET", "/languages", None, None))
        .await
        .json();
    assert_eq!(now[0]["version"], "3.11.2");
    // The other process lists it once it reads the store again (at most a minute later).
    let fresh = codebox_functions::handlers::languages::router(state_with(3600, &backends));
    let there: Value = send(&fresh, req("GET", "/languages", None, None))
        .await
        .json();
    assert_eq!(there[0]["version"], "3.11.2", "read from the blob store");
    let wrong = json!([{"id": "brainfuck", "name": "Brainfuck", "version": "1", "compiled": true, "compilers": []}]);
    send(
        &app,
        req("PUT", "/commit/languages", Some(WORKER), Some(wrong)),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    // The table's own languages, but a compiler or a name this API does not have: only
    // the versions are a worker's to say.
    let c = now
        .as_array()
        .and_then(|l| l.iter().position(|l| l["id"] == "c"))
        .expect("C is listed");
    for (field, value) in [
        ("/compilers/0/id", json!("tcc")),
        ("/name", json!("Not C")),
        ("/compilers", json!([])),
    ] {
        let mut changed = now.clone();
        *changed
            .pointer_mut(&format!("/{c}{field}"))
            .expect("the field is there") = value;
        send(
            &app,
            req("PUT", "/commit/languages", Some(WORKER), Some(changed)),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
}

/// An outcome too big for one request comes as a blob key: stored from the blob, which
/// then goes; a key outside the task's own prefix, a missing blob, or both or neither of
/// `result` and `result_key` are 400.
#[tokio::test]
async fn a_commit_can_carry_its_outcome_in_a_blob() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "wendy").await;
    let id = submit(&app, &token).await;
    let mut result = codebox_core::domain::CodeResult::empty(Verdict::Ok);
    result.stdout = "big\n".into();
    let result = TaskResult::Code(result);
    let key = format!("results/{id}/{}.json", uuid::Uuid::new_v4().simple());
    backends
        .blobs
        .put(&key, serde_json::to_vec(&result).unwrap())
        .await
        .unwrap();
    let other = format!(
        "results/{}/{}.json",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4().simple()
    );
    for bad in [
        json!({"task_id": id, "status": "completed", "result_key": other}),
        json!({"task_id": id, "status": "completed", "result_key": format!("results/{id}/../x.json")}),
        json!({"task_id": id, "status": "completed", "result_key": format!("results/{id}/{}.json", uuid::Uuid::new_v4().simple())}),
        json!({"task_id": id, "status": "completed"}),
        json!({"task_id": id, "status": "completed", "result_key": key, "result": serde_json::to_value(&result).unwrap()}),
    ] {
        send(&app, req("POST", "/commit", Some(WORKER), Some(bad)))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    let r = send(
        &app,
        req(
            "POST",
            "/commit",
            Some(WORKER),
            Some(json!({"task_id": id, "status": "completed", "result_key": key})),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let v = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["stdout"], "big\n");
    assert!(
        backends.blobs.get(&key).await.unwrap().is_none(),
        "the blob is gone once stored"
    );
}

/// A result of the other kind never lands on a task (an image's result on a code task):
/// refused with 400 by the store's own write, the task left as it was; the right kind
/// then ends it, with its end as its start when it never started.
#[tokio::test]
async fn a_commit_of_the_other_kind_is_refused() {
    let app = app();
    let token = login_as(&app, "kira").await;
    let id = submit(&app, &token).await;
    let image = TaskResult::without_output(TaskKind::Image, Verdict::Ok, None);
    send(
        &app,
        req(
            "POST",
            "/commit",
            Some(WORKER),
            Some(json!({"task_id": id, "status": "completed", "result": image})),
        ),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    let task: Value = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None))
        .await
        .json();
    assert_eq!(task["status"], "queued", "{task}");
    assert_eq!(task["result"], Value::Null);
    let r = commit(&app, &id, Verdict::Ok, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let task: Value = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None))
        .await
        .json();
    assert_eq!(task["status"], "completed");
    assert_eq!(task["started_at"], task["finished_at"], "{task}");
}

//! A user's tasks: submit, read, list, cancel, idempotency keys, and a queue that is down.

use super::*;

#[tokio::test]
async fn submit_status_result_and_commit() {
    let app = app();
    let token = login_as(&app, "erin").await;
    let body = json!({"kind": "code", "language": "c", "compiler": "clang", "code": "int main(){}", "stdin": "x", "args": ["1"], "limits": {"time_ms": 1000, "memory_mb": 64, "output_kb": 8}});
    let r = send(&app, req("POST", "/task", Some(&token), Some(body))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "queued");
    assert_eq!(r.header("location"), format!("/task/{id}"));

    let r = send(
        &app,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["kind"], "code");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["started_at"], Value::Null);
    assert_eq!(v["duration_ms"], Value::Null);

    let r = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await;
    assert!(r.problem(StatusCode::CONFLICT).contains("queued"));
    let r = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None)).await;
    assert_eq!(r.json()["result"], Value::Null);

    let r = start(&app, &id).await;
    assert_eq!(r.json()["run"], true);
    let r = send(
        &app,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.json()["status"], "running");

    let r = commit(&app, &id, Verdict::Ok, "hello\n").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "completed");
    // A second commit is harmless: the first outcome stands.
    let r = commit(&app, &id, Verdict::RuntimeError, "other").await;
    assert_eq!(r.status, StatusCode::OK);

    let r = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["status"], "completed");
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["stdout"], "hello\n");
    for field in [
        "exit_code",
        "signal",
        "stderr",
        "compile_output",
        "time_ms",
        "cpu_time_ms",
        "memory_kb",
        "truncated",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    let r = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None)).await;
    let v = r.json();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"]["stdout"], "hello\n");
    assert!(v["duration_ms"].as_i64().unwrap() >= 0);
}

/// Output with NUL, control bytes and bytes that are not UTF-8 commits and reads back
/// exactly with `?encoding=base64`, and as text (U+FFFD for the rest) by default.
#[tokio::test]
async fn results_keep_every_byte() {
    use base64::Engine;
    let app = app();
    let token = login_as(&app, "nul").await;
    let r = send(
        &app,
        req(
            "POST",
            "/task",
            Some(&token),
            Some(json!({"language": "python", "code": "x", "stdin": "a\u{0}b\u{1}"})),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "NUL in stdin is input like any other"
    );
    let id = r.json()["id"].as_str().unwrap().to_owned();
    start(&app, &id).await;
    let every: Vec<u8> = (0..=255u8).collect();
    let mut result = codebox_core::domain::CodeResult::empty(Verdict::Ok);
    result.stdout = every.clone().into();
    result.stderr = b"a\x00b".as_slice().into();
    result.compile_output = Some(b"\xff".as_slice().into());
    let commit = serde_json::to_value(Commit {
        task_id: id.parse().unwrap(),
        status: TaskStatus::Completed,
        result: TaskResult::Code(result),
        notify: false,
    })
    .unwrap();
    assert!(commit["result"]["stdout"]["base64"].is_string(), "{commit}");
    let r = send(&app, req("POST", "/commit", Some(WORKER), Some(commit))).await;
    assert_eq!(r.status, StatusCode::OK);
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    for path in [
        format!("/result/{id}?encoding=base64"),
        format!("/task/{id}?encoding=base64"),
    ] {
        let v = send(&app, req("GET", &path, Some(&token), None))
            .await
            .json();
        let v = if v["result"].is_object() {
            &v["result"]
        } else {
            &v
        };
        assert_eq!(v["encoding"], "base64");
        assert_eq!(b64(&v["stdout"]), every, "{path}");
        assert_eq!(b64(&v["stderr"]), b"a\x00b", "{path}");
        assert_eq!(b64(&v["compile_output"]), b"\xff", "{path}");
    }
    let v = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["encoding"], "utf-8");
    assert_eq!(v["stderr"], "a\u{0}b");
    assert_eq!(v["compile_output"], "\u{fffd}");
    for bad in ["?encoding=hex", "?encoding=base64&x=1"] {
        send(
            &app,
            req("GET", &format!("/result/{id}{bad}"), Some(&token), None),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
        send(
            &app,
            req("GET", &format!("/task/{id}{bad}"), Some(&token), None),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn bad_task_submissions() {
    let app = app();
    let token = login_as(&app, "frank").await;
    for bad in [
        json!({"language": "brainfuck", "code": "x"}),
        json!({"language": "python"}),
        json!({"language": "python", "code": "x", "compiler": "gcc"}),
        json!({"language": "c", "code": "x", "compiler": "tcc"}),
        json!({"language": "python", "code": "x", "limits": {"time_ms": 20001}}),
        json!({"language": "python", "code": "x", "limits": {"memory_mb": 2048}}),
        json!({"language": "python", "code": "x", "limits": {"output_kb": 0}}),
        json!({"language": "python", "code": "x", "limits": {"cpu": 1}}),
        json!({"language": "python", "code": "x", "extra": 1}),
        json!({"kind": "video", "code": "x"}),
        json!({"language": "python", "code": "x".repeat(128 * 1024 + 1)}),
        json!({"language": "python", "code": "x", "stdin": "y".repeat(1024 * 1024 + 1)}),
        json!({"language": "python", "code": "print(1)\u{0}"}),
        // serde would take a struct's fields as a list; the document allows objects only.
        json!([
            null, "python", "print(1)", null, null, null, null, null, null
        ]),
        json!({"language": "python", "code": "x", "limits": [1000, 64, 8]}),
        json!({"language": "python", "code": "x", "limits": {"time_ms": 1.5}}),
    ] {
        send(&app, req("POST", "/task", Some(&token), Some(bad)))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    send(
        &app,
        req(
            "POST",
            "/task",
            None,
            Some(json!({"language": "python", "code": "x"})),
        ),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);

    let huge = format!(
        "{{\"language\":\"python\",\"code\":\"{}\"}}",
        "x".repeat(13 * 1024 * 1024)
    );
    let r = send(
        &app,
        Request::post("/task")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(huge))
            .unwrap(),
    )
    .await;
    r.problem(StatusCode::PAYLOAD_TOO_LARGE);
    let list = send(&app, req("GET", "/task", Some(&token), None))
        .await
        .json();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing stored for refused tasks"
    );
}

#[tokio::test]
async fn another_users_task_is_404() {
    let app = app();
    let alice = login_as(&app, "alice").await;
    let mallory = login_as(&app, "mallory").await;
    let id = submit(&app, &alice).await;
    for (method, uri) in [
        ("GET", format!("/status/{id}")),
        ("GET", format!("/result/{id}")),
        ("GET", format!("/task/{id}")),
        ("DELETE", format!("/task/{id}")),
    ] {
        let r = send(&app, req(method, &uri, Some(&mallory), None)).await;
        assert!(r.problem(StatusCode::NOT_FOUND).contains("not found"));
    }
    let r = send(
        &app,
        req(
            "GET",
            &format!("/status/{}", uuid::Uuid::new_v4()),
            Some(&alice),
            None,
        ),
    )
    .await;
    r.problem(StatusCode::NOT_FOUND);
    let r = send(&app, req("GET", "/status/not-a-uuid", Some(&alice), None)).await;
    r.problem(StatusCode::BAD_REQUEST);
    let list = send(&app, req("GET", "/task", Some(&mallory), None))
        .await
        .json();
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn list_pages_newest_first() {
    let app = app();
    let token = login_as(&app, "gina").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submit(&app, &token).await);
    }
    let mut seen = Vec::new();
    let mut created = Vec::new();
    let mut uri = "/task?limit=2".to_owned();
    for _ in 0..5 {
        let v = send(&app, req("GET", &uri, Some(&token), None))
            .await
            .json();
        for t in v["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_owned());
            created.push(t["created_at"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/task?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    let (mut a, mut b) = (seen.clone(), ids.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "each task exactly once across the pages");
    for bad in [
        "/task?limit=0",
        "/task?limit=101",
        "/task?limit=abc",
        "/task?cursor=%21%21",
        "/task?sort=asc",
    ] {
        send(&app, req("GET", bad, Some(&token), None))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn cancel_queued_and_finished_tasks() {
    let app = app();
    let token = login_as(&app, "hank").await;
    let id = submit(&app, &token).await;
    let r = send(
        &app,
        req("DELETE", &format!("/task/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let v = send(
        &app,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["status"], "cancelled");
    let v = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["verdict"], "cancelled");
    let r = send(
        &app,
        req("DELETE", &format!("/task/{id}"), Some(&token), None),
    )
    .await;
    assert!(r.problem(StatusCode::CONFLICT).contains("cancelled"));
    // The worker is told not to run it, and its late commit is accepted and ignored.
    let r = start(&app, &id).await;
    assert_eq!(r.json()["run"], false);
    let r = commit(&app, &id, Verdict::Ok, "late").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "cancelled");
    let r = send(
        &app,
        req("GET", &format!("/commit/{id}"), Some(WORKER), None),
    )
    .await;
    assert_eq!(r.json()["status"], "cancelled");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_task() {
    let app = app();
    let token = login_as(&app, "liam").await;
    let mk = || {
        Request::post("/task")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "order-42")
            .body(Body::from(
                json!({"language": "python", "code": "print(1)"}).to_string(),
            ))
            .unwrap()
    };
    let a = send(&app, mk()).await;
    let b = send(&app, mk()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(b.status, StatusCode::ACCEPTED);
    assert_eq!(a.json()["id"], b.json()["id"]);
    assert_eq!(b.header("idempotent-replayed"), "true");
    let list = send(&app, req("GET", "/task", Some(&token), None))
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// A queue away, and the queue of a Lambda function built to queue nothing
/// (`lambda::NoQueue`, should a route that queues ever be served by one): 503, nothing kept.
#[tokio::test]
async fn queue_outage_is_503_and_leaves_nothing() {
    let away = MemoryQueue::new(3);
    away.set_available(false);
    let queues: [Arc<dyn codebox_core::ports::TaskQueue>; 2] =
        [Arc::new(away), Arc::new(codebox_functions::lambda::NoQueue)];
    for queue in queues {
        refused_and_gone(queue).await;
    }
}

async fn refused_and_gone(queue: Arc<dyn codebox_core::ports::TaskQueue>) {
    let mut backends = Backends::memory();
    backends.queue = queue;
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "mia").await;
    let r = send(
        &app,
        req(
            "POST",
            "/task",
            Some(&token),
            Some(json!({"language": "python", "code": "x"})),
        ),
    )
    .await;
    let detail = r.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !detail.to_lowercase().contains("memory"),
        "no internals in detail: {detail}"
    );
    let list = send(&app, req("GET", "/task", Some(&token), None))
        .await
        .json();
    assert!(list["items"].as_array().unwrap().is_empty());
}

//! Every route through `router(state).oneshot(..)`: no server, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use codebox_core::domain::{Commit, ImageResult, TaskResult, TaskStatus, Verdict};
use codebox_core::memory::MemoryQueue;
use codebox_functions::config::{ApiConfig, Backends};
use codebox_functions::{AppState, router};
use secrecy::SecretString;
use serde_json::{Value, json};

mod common;

use common::*;

#[tokio::test]
async fn register_validates_and_refuses_taken_names() {
    let app = app();
    let r = send(
        &app,
        req(
            "POST",
            "/register",
            None,
            Some(json!({"username": "ada", "password": "password123"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v = r.json();
    assert_eq!(v["username"], "ada");
    assert!(v["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("password_hash").is_none());

    let taken = send(
        &app,
        req(
            "POST",
            "/register",
            None,
            Some(json!({"username": "ada", "password": "password123"})),
        ),
    )
    .await;
    assert!(taken.problem(StatusCode::CONFLICT).contains("taken"));

    for bad in [
        json!({"username": "ad", "password": "password123"}),
        json!({"username": "a d a", "password": "password123"}),
        json!({"username": "grace", "password": "short"}),
        json!({"username": "grace", "password": "x".repeat(73)}),
        json!({"username": "grace", "password": "password123", "admin": true}),
        json!({"username": "grace"}),
    ] {
        let r = send(&app, req("POST", "/register", None, Some(bad))).await;
        r.problem(StatusCode::BAD_REQUEST);
    }
    let r = send(
        &app,
        Request::post("/register")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert!(r.problem(StatusCode::BAD_REQUEST).contains("JSON"));
    let r = send(
        &app,
        Request::post("/register").body(Body::from("{}")).unwrap(),
    )
    .await;
    r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn login_and_logout() {
    let app = app();
    let token = login_as(&app, "bob").await;
    let r = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "bob", "password": "password123"})),
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);

    let wrong = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "bob", "password": "password999"})),
        ),
    )
    .await;
    let unknown = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "nobody", "password": "password123"})),
        ),
    )
    .await;
    assert_eq!(
        wrong.problem(StatusCode::UNAUTHORIZED),
        unknown.problem(StatusCode::UNAUTHORIZED)
    );

    let r = send(&app, req("GET", "/task", Some(&token), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, req("POST", "/logout", Some(&token), None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(&app, req("GET", "/task", Some(&token), None)).await;
    r.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    send(&app, req("POST", "/logout", Some(&token), None))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    send(&app, req("POST", "/logout", None, None))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_malformed_and_expired_tokens_get_401() {
    let app = app();
    let token = login_as(&app, "carol").await;
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for t in [forged.as_str(), "abc", "a.b.c"] {
        let r = send(&app, req("GET", "/task", Some(t), None)).await;
        r.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("www-authenticate"), "Bearer");
    }
    let r = send(
        &app,
        Request::get("/task")
            .header("authorization", "Basic Zm9vOmJhcg==")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.problem(StatusCode::UNAUTHORIZED);
    // A token signed by another deployment's key.
    let other = router(
        AppState::build(
            &ApiConfig {
                jwt_secret: SecretString::from("another-secret-another-secret-another"),
                ..config(3600)
            },
            &Backends::memory(),
        )
        .unwrap(),
    );
    let foreign = login_as(&other, "carol").await;
    send(&app, req("GET", "/task", Some(&foreign), None))
        .await
        .problem(StatusCode::UNAUTHORIZED);

    let expired_app = router(state_with(-10, &Backends::memory()));
    let expired = login_as(&expired_app, "dave").await;
    let r = send(&expired_app, req("GET", "/task", Some(&expired), None)).await;
    r.problem(StatusCode::UNAUTHORIZED);
}

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
async fn image_task_round_trip() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "judy").await;
    let input = png(4, 3);
    let body = json!({"kind": "image", "image_base64": base64::engine::general_purpose::STANDARD.encode(&input), "filter": {"name": "blur", "parameters": {"sigma": 2.0}}});
    let r = send(&app, req("POST", "/task", Some(&token), Some(body))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let v = send(
        &app,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["kind"], "image");

    let output = png(4, 3);
    let key = format!("output/{id}.png");
    backends.blobs.put(&key, output.clone()).await.unwrap();
    let commit = serde_json::to_value(Commit {
        task_id: id.parse().unwrap(),
        status: TaskStatus::Completed,
        result: TaskResult::Image(ImageResult {
            verdict: Verdict::Ok,
            output_key: Some(key),
            error: None,
        }),
        notify: false,
    })
    .unwrap();
    assert_eq!(
        send(&app, req("POST", "/commit", Some(WORKER), Some(commit)))
            .await
            .status,
        StatusCode::OK
    );

    let r = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.bytes, output);
    let r = send(
        &app,
        Request::get(format!("/result/{id}"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v = r.json();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(v["image_base64"].as_str().unwrap())
            .unwrap(),
        output
    );
}

#[tokio::test]
async fn bad_images_are_400() {
    let app = app();
    let token = login_as(&app, "kate").await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut huge_header = png(2, 2);
    huge_header[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    huge_header[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    for (image, filter) in [
        (
            b64(b"GIF89a not a png at all, sorry........"),
            json!({"name": "negative"}),
        ),
        (b64(&huge_header), json!({"name": "negative"})),
        ("%%%not base64".to_owned(), json!({"name": "negative"})),
        (b64(&png(2, 2)), json!({"name": "sepia"})),
        (
            b64(&png(2, 2)),
            json!({"name": "blur", "parameters": {"sigma": 500.0}}),
        ),
        (
            b64(&png(2, 2)),
            json!({"name": "negative", "parameters": {"sigma": 1.0}}),
        ),
    ] {
        let body = json!({"kind": "image", "image_base64": image, "filter": filter});
        send(&app, req("POST", "/task", Some(&token), Some(body)))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    // Over the body limit before it is even parsed.
    let body = json!({"kind": "image", "image_base64": b64(&vec![0u8; 10 * 1024 * 1024]), "filter": {"name": "negative"}});
    send(&app, req("POST", "/task", Some(&token), Some(body)))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    let mixed = json!({"kind": "image", "image_base64": b64(&png(2, 2)), "filter": {"name": "flipx"}, "code": "x"});
    send(&app, req("POST", "/task", Some(&token), Some(mixed)))
        .await
        .problem(StatusCode::BAD_REQUEST);
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

#[tokio::test]
async fn queue_outage_is_503_and_leaves_nothing() {
    let queue = MemoryQueue::new(3);
    queue.set_available(false);
    let mut backends = Backends::memory();
    backends.queue = Arc::new(queue);
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

#[tokio::test]
async fn service_routes() {
    let app = app();
    let v = send(&app, req("GET", "/", None, None)).await.json();
    assert_eq!(v["service"], "codebox");
    assert_eq!(v["status"], "ok");
    let r = send(&app, req("GET", "/health", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["checks"]["queue"], "ok");
    let langs = send(&app, req("GET", "/languages", None, None))
        .await
        .json();
    let ids: Vec<_> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    let table: Vec<_> = codebox_core::languages::LANGUAGES
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, table);
    assert!(ids.starts_with(&["python", "c", "cpp"]));

    let doc = send(&app, req("GET", "/openapi.json", None, None))
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/register",
        "/login",
        "/logout",
        "/task",
        "/task/{id}",
        "/status/{id}",
        "/result/{id}",
        "/commit",
        "/languages",
        "/health",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let r = send(&app, req("GET", "/swagger/", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.bytes).contains("swagger"));

    let r = send(&app, req("GET", "/metrics", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.bytes).contains("codebox_http_requests_total"));

    send(&app, req("GET", "/nope", None, None))
        .await
        .problem(StatusCode::NOT_FOUND);
    send(&app, req("PUT", "/register", None, None))
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_single_handler_router_serves_alone() {
    // As a Lambda function does: only its own route.
    let backends = Backends::memory();
    let state = state_with(3600, &backends);
    let full = router(state.clone());
    let token = login_as(&full, "nina").await;
    let id = submit(&full, &token).await;
    let only_status = codebox_functions::handlers::get_status::router(state);
    let r = send(
        &only_status,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["id"], id.as_str());
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
}

/// No process starts with a secret everyone knows: the placeholders of `.env.example`
/// and short worker credentials are refused with the variable named.
#[test]
fn placeholder_and_short_secrets_are_refused() {
    let strong = "0123456789abcdef0123456789abcdef0123";
    for (jwt, worker, var) in [
        (
            "change-me-change-me-change-me-change-me-0123456789",
            WORKER,
            "JWT_SECRET",
        ),
        (strong, "change-me-worker-token", "WORKER_TOKEN"),
        (strong, "short", "WORKER_TOKEN"),
    ] {
        let e = ApiConfig::with_secrets(SecretString::from(jwt), SecretString::from(worker))
            .err()
            .unwrap_or_else(|| panic!("{var} accepted"));
        assert_eq!(e.var, var);
    }
    ApiConfig::with_secrets(SecretString::from(strong), SecretString::from(WORKER)).unwrap();
}

/// A store that answers nothing: every call, and its readiness probe, fail.
struct Down;

#[async_trait::async_trait]
impl codebox_core::ports::SessionStore for Down {
    async fn put(&self, _: &codebox_core::domain::Session) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
    async fn get(
        &self,
        _: &str,
    ) -> codebox_core::error::Result<Option<codebox_core::domain::Session>> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
    async fn revoke(&self, _: &str) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
    async fn ping(&self) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
}

#[async_trait::async_trait]
impl codebox_core::ports::BlobStore for Down {
    async fn put(&self, _: &str, _: Vec<u8>) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
    async fn get(&self, _: &str) -> codebox_core::error::Result<Option<Vec<u8>>> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
    async fn delete(&self, _: &str) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable("down".into()))
    }
}

/// `/health` is 503 naming the part when the session store (logins would fail) or the
/// blob store (image tasks would fail) does not answer.
#[tokio::test]
async fn health_checks_every_store() {
    let mut backends = Backends::memory();
    backends.sessions = Arc::new(Down);
    let app = router(state_with(3600, &backends));
    let r = send(&app, req("GET", "/health", None, None)).await;
    assert!(
        r.problem(StatusCode::SERVICE_UNAVAILABLE)
            .contains("session store")
    );
    let mut backends = Backends::memory();
    backends.blobs = Arc::new(Down);
    let app = router(state_with(3600, &backends));
    let r = send(&app, req("GET", "/health", None, None)).await;
    assert!(
        r.problem(StatusCode::SERVICE_UNAVAILABLE)
            .contains("blob store")
    );
    let app = router(state_with(3600, &Backends::memory()));
    let v = send(&app, req("GET", "/health", None, None)).await.json();
    for part in ["store", "sessions", "queue", "blobs"] {
        assert_eq!(v["checks"][part], "ok", "{v}");
    }
}

fn app_with(limits: codebox_core::limits::LimitsConfig, cors: &[&str]) -> Router {
    let mut c = config(3600);
    c.limits = limits;
    c.cors_origins = cors.iter().map(|o| (*o).to_owned()).collect();
    router(AppState::build(&c, &Backends::memory()).unwrap())
}

fn assert_429(r: &Reply) {
    let detail = r.problem(StatusCode::TOO_MANY_REQUESTS);
    let after: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&after), "Retry-After {after} ({detail})");
}

/// `/register` and `/login` share one rate per client address: the next call over it is
/// 429 with `Retry-After`, whichever route it is.
#[tokio::test]
async fn register_and_login_are_rate_limited_per_address() {
    let app = app_with(
        codebox_core::limits::LimitsConfig {
            auth_per_minute: 3,
            ..Default::default()
        },
        &[],
    );
    let creds = json!({"username": "rita", "password": "password123"});
    let r = send(&app, req("POST", "/register", None, Some(creds.clone()))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    for _ in 0..2 {
        let r = send(&app, req("POST", "/login", None, Some(creds.clone()))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_429(&send(&app, req("POST", "/login", None, Some(creds.clone()))).await);
    let other = json!({"username": "sam", "password": "password123"});
    assert_429(&send(&app, req("POST", "/register", None, Some(other))).await);
}

/// A user's submissions have a rate, and a cap on tasks queued or running at once; a
/// finished task frees its place.
#[tokio::test]
async fn submissions_have_a_rate_and_a_cap_on_tasks_under_way() {
    let app = app_with(
        codebox_core::limits::LimitsConfig {
            max_active_tasks: 2,
            ..Default::default()
        },
        &[],
    );
    let token = login_as(&app, "tom").await;
    let first = submit(&app, &token).await;
    submit(&app, &token).await;
    let body = json!({"language": "python", "code": "print(1)"});
    let r = send(&app, req("POST", "/task", Some(&token), Some(body.clone()))).await;
    assert_429(&r);
    assert!(
        r.problem(StatusCode::TOO_MANY_REQUESTS)
            .contains("at most 2")
    );
    // Another user is not held back by tom's tasks.
    let other = login_as(&app, "uma").await;
    submit(&app, &other).await;
    // A finished task frees its place.
    start(&app, &first).await;
    let r = commit(&app, &first, Verdict::Ok, "1").await;
    assert_eq!(r.status, StatusCode::OK);
    submit(&app, &token).await;

    let app = app_with(
        codebox_core::limits::LimitsConfig {
            submit_per_minute: 2,
            ..Default::default()
        },
        &[],
    );
    let token = login_as(&app, "vic").await;
    submit(&app, &token).await;
    submit(&app, &token).await;
    assert_429(&send(&app, req("POST", "/task", Some(&token), Some(body))).await);
}

/// CORS: an allowed origin gets its preflight answered and the headers on responses; any
/// other origin, or a deployment without `CORS_ORIGINS`, gets no CORS header at all.
#[tokio::test]
async fn cors_allows_only_the_listed_origins() {
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/task")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let app = app_with(Default::default(), &["https://app.example.com"]);
    let r = send(&app, preflight("https://app.example.com")).await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert!(r.header("access-control-allow-methods").contains("POST"));
    assert!(
        r.header("access-control-allow-headers")
            .contains("authorization")
    );
    let r = send(&app, preflight("https://evil.example.net")).await;
    assert_eq!(r.header("access-control-allow-origin"), "");
    let r = send(
        &app,
        Request::get("/health")
            .header("origin", "https://app.example.com")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    let closed = app_with(Default::default(), &[]);
    let r = send(&closed, preflight("https://app.example.com")).await;
    assert_eq!(r.header("access-control-allow-origin"), "");
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

/// `POST /task/upload` for `size` bytes: the answer, and the path of its upload URL.
async fn grant(app: &Router, token: &str, size: usize) -> (Value, String) {
    let r = send(
        app,
        req(
            "POST",
            "/task/upload",
            Some(token),
            Some(json!({"size": size})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let g = r.json();
    let url = g["upload_url"].as_str().unwrap();
    let path = url[url.find("/task/upload/").unwrap()..].to_owned();
    (g, path)
}

fn put_png(uri: &str, content_type: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("PUT")
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap()
}

/// Where the blob store signs no URLs, the API takes uploads itself: `POST /task/upload`
/// grants a URL for exactly `size` bytes of PNG, the upload needs no token but only works
/// as granted, and the image task takes the upload by its key.
#[tokio::test]
async fn an_upload_url_takes_exactly_the_png_it_was_granted_for() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "uma").await;
    let input = png(5, 4);
    let size = input.len();
    let r = Request::builder()
        .method("POST")
        .uri("/task/upload")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "api.example.com")
        .header("x-forwarded-proto", "https")
        .body(Body::from(json!({"size": size}).to_string()))
        .unwrap();
    let granted = send(&app, r).await;
    assert_eq!(
        granted.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&granted.bytes)
    );
    let g = granted.json();
    let key = g["image_key"].as_str().unwrap().to_owned();
    let url = g["upload_url"].as_str().unwrap().to_owned();
    assert!(key.starts_with("uploads/"), "{key}");
    assert_eq!(g["method"], "PUT");
    assert_eq!(g["headers"]["content-type"], "image/png");
    assert_eq!(g["headers"]["content-length"], size.to_string());
    let path = url
        .strip_prefix("https://api.example.com")
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    assert!(path.starts_with("/task/upload/"), "{path}");

    // Not as granted: another size, another type, not a PNG, a forged or foreign grant.
    let mut longer = input.clone();
    longer.push(0);
    send(&app, put_png(&path, "image/png", longer))
        .await
        .problem(StatusCode::BAD_REQUEST);
    send(
        &app,
        put_png(&path, "application/octet-stream", input.clone()),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut garbage = input.clone();
    garbage[0] = b'G';
    send(&app, put_png(&path, "image/png", garbage))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let mut forged = path.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    send(&app, put_png(&forged, "image/png", input.clone()))
        .await
        .problem(StatusCode::FORBIDDEN);
    send(
        &app,
        put_png(&format!("/task/upload/{token}"), "image/png", input.clone()),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(
        backends.blobs.get(&key).await.unwrap().is_none(),
        "nothing stored yet"
    );
    // Before the upload, the key leads nowhere.
    let task = json!({"kind": "image", "image_key": key, "filter": {"name": "negative"}});
    send(&app, req("POST", "/task", Some(&token), Some(task.clone())))
        .await
        .problem(StatusCode::BAD_REQUEST);

    let r = send(&app, put_png(&path, "image/png", input.clone())).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(backends.blobs.get(&key).await.unwrap(), Some(input.clone()));

    // Another user cannot use it.
    let other = login_as(&app, "victor").await;
    send(&app, req("POST", "/task", Some(&other), Some(task.clone())))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let r = send(&app, req("POST", "/task", Some(&token), Some(task))).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );

    // Sizes out of range, and no size at all.
    for (body, status) in [
        (json!({"size": 0}), StatusCode::BAD_REQUEST),
        (
            json!({"size": 10 * 1024 * 1024 + 1}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"size": -1}), StatusCode::BAD_REQUEST),
    ] {
        send(&app, req("POST", "/task/upload", Some(&token), Some(body)))
            .await
            .problem(status);
    }
    send(
        &app,
        req("POST", "/task/upload", None, Some(json!({"size": 100}))),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    // No Host header: the URL still names a host.
    let (g, _) = grant(&app, &token, 100).await;
    assert!(
        g["upload_url"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost/task/upload/"),
        "{g}"
    );
}

/// With `PUBLIC_URL`, upload URLs name the deployment's public address, whatever `Host`
/// a request came with (a proxy in front, or a client sending someone else's host).
#[tokio::test]
async fn upload_urls_name_the_public_url_when_one_is_set() {
    let backends = Backends::memory();
    let app = router(
        AppState::build(
            &ApiConfig {
                public_url: Some("https://code.example.com/api".into()),
                ..config(3600)
            },
            &backends,
        )
        .unwrap(),
    );
    let token = login_as(&app, "xavier").await;
    let mut request = req(
        "POST",
        "/task/upload",
        Some(&token),
        Some(json!({"size": 100})),
    );
    request
        .headers_mut()
        .insert(header::HOST, "attacker.example".parse().unwrap());
    let r = send(&app, request).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let url = r.json()["upload_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://code.example.com/api/task/upload/"),
        "{url}"
    );
}

#[test]
fn public_url_must_be_a_base_url() {
    use codebox_functions::config::public_url;
    assert_eq!(public_url(None).unwrap(), None);
    assert_eq!(
        public_url(Some("https://code.example.com/".into())).unwrap(),
        Some("https://code.example.com".into())
    );
    assert_eq!(
        public_url(Some("http://127.0.0.1:8080/api".into())).unwrap(),
        Some("http://127.0.0.1:8080/api".into())
    );
    for bad in [
        "code.example.com",
        "ftp://code.example.com",
        "https://",
        "https://code.example.com/?x=1",
        "https://user@code.example.com",
        "https://code example.com",
    ] {
        let e = public_url(Some(bad.into())).unwrap_err();
        assert_eq!(e.var, "PUBLIC_URL", "{bad}");
    }
}

/// A deployment whose requests must stay small (AWS) refuses a larger inline PNG with 413
/// and takes the same PNG through an upload.
#[tokio::test]
async fn inline_images_over_the_deployments_limit_go_through_uploads() {
    let backends = Backends::memory();
    let app = router(
        AppState::build(
            &ApiConfig {
                inline_image_max: 200,
                ..config(3600)
            },
            &backends,
        )
        .unwrap(),
    );
    let token = login_as(&app, "wendy").await;
    let input = png(40, 40);
    assert!(input.len() > 200, "{}", input.len());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&input);
    let inline = json!({"kind": "image", "image_base64": b64, "filter": {"name": "flipx"}});
    let detail = send(&app, req("POST", "/task", Some(&token), Some(inline)))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail.contains("POST /task/upload"), "{detail}");
    let (g, path) = grant(&app, &token, input.len()).await;
    assert_eq!(
        send(&app, put_png(&path, "image/png", input)).await.status,
        StatusCode::NO_CONTENT
    );
    let task = json!({"kind": "image", "image_key": g["image_key"], "filter": {"name": "flipx"}});
    let r = send(&app, req("POST", "/task", Some(&token), Some(task))).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
}

/// Uploads are kept for a day: one user gets at most 60 upload URLs an hour, whatever
/// the submission rate allows.
#[tokio::test]
async fn upload_urls_are_capped_per_hour() {
    let mut cfg = config(3600);
    cfg.limits.submit_per_minute = 10_000;
    let app = router(AppState::build(&cfg, &Backends::memory()).unwrap());
    let token = login_as(&app, "xavier").await;
    for _ in 0..codebox_core::limits::UPLOADS_PER_HOUR {
        grant(&app, &token, 100).await;
    }
    let detail = send(
        &app,
        req(
            "POST",
            "/task/upload",
            Some(&token),
            Some(json!({"size": 100})),
        ),
    )
    .await
    .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(detail.contains("uploads an hour"), "{detail}");
}

/// An upload's body is read only for a valid grant, and never past 10 MiB.
#[tokio::test]
async fn an_upload_body_over_the_limit_is_too_large() {
    let app = app();
    let token = login_as(&app, "yvonne").await;
    let (_, path) = grant(&app, &token, 100).await;
    send(
        &app,
        put_png(&path, "image/png", vec![0; 10 * 1024 * 1024 + 1]),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    send(
        &app,
        put_png("/task/upload/not-a-grant", "image/png", vec![0; 100]),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

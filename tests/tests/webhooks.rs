//! A task's webhook and a Judge0 submission's `callback_url` on the embedded stack: the
//! program runs in its sandbox, the worker commits, the API calls the receiver (on
//! loopback, listed in `CALLBACK_ALLOWED_HOSTS`) with the outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use codebox_tests::Client;
use serde_json::{Value, json};
use std::sync::Mutex;

type Calls = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// A receiver on loopback recording each call's method, path and JSON body.
async fn receiver() -> (std::net::SocketAddr, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: axum::http::Uri, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock()
                    .unwrap()
                    .push((method, uri.path().to_owned(), json));
                "ok"
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, calls)
}

/// The call made to `path`, once it is made (at most 60 s).
async fn call_to(calls: &Calls, path: &str) -> (Method, Value) {
    for _ in 0..600 {
        if let Some((m, _, body)) = calls.lock().unwrap().iter().find(|(_, p, _)| p == path) {
            return (m.clone(), body.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call to {path} within 60 s");
}

#[tokio::test]
async fn webhooks_and_judge0_callbacks_are_called_when_tasks_end() {
    let (addr, calls) = receiver().await;
    let running = codebox_tests::start_embedded_with(None, |config| {
        config.api.webhooks.allowed_hosts =
            codebox_functions::webhooks::AllowedHosts::parse(&addr.to_string()).unwrap();
    })
    .await;
    let c = Client::new_user(running.addr).await.unwrap();

    let task = json!({
        "language": "python",
        "code": "print(input()[::-1])",
        "stdin": "olleh",
        "webhook": {"url": format!("http://{addr}/task")},
    });
    let id = c.submit(&task).await.unwrap();
    let (method, body) = call_to(&calls, "/task").await;
    assert_eq!(method, Method::POST);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["result"]["stdout"], "hello\n");

    let submission = json!({
        "source_code": "import sys; print('warn', file=sys.stderr); print(6 * 7)",
        "language_id": 71,
        "callback_url": format!("http://{addr}/judge0"),
    });
    let (status, answer) = c.post("/judge0/submissions", &submission).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    let token = answer["token"].as_str().unwrap().to_owned();
    let (method, body) = call_to(&calls, "/judge0").await;
    assert_eq!(method, Method::PUT);
    assert_eq!(body["token"], token.as_str());
    assert_eq!(body["status"]["id"], 3);
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap().replace('\n', ""))
            .unwrap()
    };
    assert_eq!(decode(&body["stdout"]), b"42\n");
    assert_eq!(decode(&body["stderr"]), b"warn\n");
    assert_eq!(calls.lock().unwrap().len(), 2, "one call per task");
}

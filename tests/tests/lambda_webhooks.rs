//! Webhooks on the AWS deployment: the `commit` function hands an ended task's webhook to
//! the webhook queue (SQS, on moto) and answers its worker without calling anyone; the
//! `webhooks` function, given the queue's messages as Lambda hands them, makes the call
//! with every try (a receiver failing twice is reached on the third), drops a message it
//! can never act on, and has a message whose task cannot be read now handed again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use codebox_functions::config::{ApiConfig, AwsBackend, Backend, Backends};
use codebox_functions::webhooks::queued::{self, SqsBatchResponse, SqsEvent};
use codebox_functions::webhooks::{AllowedHosts, WebhookCalls, WebhookConfig};
use codebox_functions::{AppState, router};
use codebox_tests::aws::StandIn;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

const WORKER: &str = "webhook-queue-worker-token";

/// A receiver on loopback that answers 503 to its first `failures` requests, then 200,
/// keeping each request's method, path and body.
async fn receiver(failures: usize) -> (SocketAddr, Arc<Mutex<Vec<(Method, String, Value)>>>) {
    let got: Arc<Mutex<Vec<(Method, String, Value)>>> = Arc::default();
    let seen = got.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: axum::http::Uri, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.push((method, uri.path().to_owned(), body));
                if seen.len() <= failures {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

fn backend(
    stand_in: &StandIn,
    tasks_table: String,
    webhook_queue_url: Option<String>,
) -> AwsBackend {
    AwsBackend {
        users_table: stand_in.var("USERS_TABLE"),
        sessions_table: stand_in.var("SESSIONS_TABLE"),
        tasks_table,
        idempotency_table: stand_in.var("IDEMPOTENCY_TABLE"),
        limits_table: stand_in.var("LIMITS_TABLE"),
        queue_url: stand_in.var("TASK_QUEUE_URL"),
        blob_bucket: stand_in.var("BLOB_BUCKET"),
        task_retention_days: None,
        webhook_queue_url,
    }
}

fn config(backend: AwsBackend, allowed: &str) -> ApiConfig {
    ApiConfig {
        jwt_secret: SecretString::from("webhook-queue-secret-webhook-queue-secret"),
        worker_token: SecretString::from(WORKER),
        token_ttl_secs: 900,
        bcrypt_cost: 4,
        backend: Backend::Aws(backend),
        limits: Default::default(),
        cors_origins: vec![],
        events_max: codebox_functions::state::EVENTS_MAX,
        inline_image_max: codebox_core::png::MAX_BYTES,
        public_url: None,
        webhooks: WebhookConfig {
            allowed_hosts: AllowedHosts::parse(allowed).unwrap(),
            secret: None,
        },
        judge0_signals: Default::default(),
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The webhooks function's calls, on a state of `backend`, as `AppState::for_webhooks`
/// builds them.
fn webhooks_function(
    sdk: &aws_config::SdkConfig,
    config: &ApiConfig,
    backend: &AwsBackend,
) -> (AppState, Arc<WebhookCalls>) {
    let state = AppState::build(config, &Backends::aws_with(sdk, backend)).unwrap();
    let calls = WebhookCalls::new(&config.webhooks).unwrap();
    calls.attach(state.clone());
    (state, calls)
}

/// The queue's messages as the SQS event Lambda hands the function (at most 10, 5 s).
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "body": m.body(), "eventSource": "aws:sqs"}))
        .collect()
}

fn event(records: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn handed_again(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn commit_hands_the_callback_on_and_the_webhooks_function_makes_it() {
    let stand_in = StandIn::provision(60, 3);
    let sdk = stand_in.sdk().await;
    let queue_url = stand_in.var("WEBHOOK_QUEUE_URL");
    let (addr, got) = receiver(2).await;
    let tasks_table = stand_in.var("TASKS_TABLE");

    // The commit function: the webhook queue set, as on Lambda.
    let commit_backend = backend(&stand_in, tasks_table.clone(), Some(queue_url.clone()));
    let commit_config = config(commit_backend.clone(), &addr.to_string());
    let app = router(
        AppState::build(&commit_config, &Backends::aws_with(&sdk, &commit_backend)).unwrap(),
    );

    let creds = json!({"username": "hooked-on-aws", "password": "password123"});
    assert_eq!(
        call(&app, "POST", "/register", None, creds.clone()).await.0,
        StatusCode::CREATED
    );
    let (_, login) = call(&app, "POST", "/login", None, creds).await;
    let token = login["token"].as_str().unwrap().to_owned();
    let body = json!({
        "source_code": "print('hi')",
        "language_id": 71,
        "callback_url": format!("http://{addr}/called"),
    });
    let (status, created) = call(&app, "POST", "/judge0/submissions", Some(&token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["token"].as_str().unwrap().to_owned();

    // The worker starts the task and commits its end.
    let (status, _) = call(
        &app,
        "POST",
        "/commit/start",
        Some(WORKER),
        json!({"task_id": id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut result = codebox_core::domain::CodeResult::empty(codebox_core::domain::Verdict::Ok);
    result.stdout = "hi\n".into();
    result.exit_code = Some(0);
    let commit = codebox_core::domain::Commit {
        task_id: id.parse().unwrap(),
        status: codebox_core::domain::TaskStatus::Completed,
        result: codebox_core::domain::TaskResult::Code(result),
        notify: true,
    };
    let (status, answer) = call(
        &app,
        "POST",
        "/commit",
        Some(WORKER),
        serde_json::to_value(commit).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // commit answered without calling the receiver (it handed the call on).
    assert!(
        got.lock().unwrap().is_empty(),
        "commit called the receiver itself"
    );

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut records = receive(&sqs, &queue_url).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        serde_json::from_str::<Value>(records[0]["body"].as_str().unwrap()).unwrap(),
        json!({ "task": id })
    );
    // Beside it, a message of no one's and one of a task that does not exist.
    records.push(json!({"messageId": "garbage", "body": "not json", "eventSource": "aws:sqs"}));
    records.push(json!({"messageId": "gone", "body": json!({"task": uuid::Uuid::new_v4()}).to_string(), "eventSource": "aws:sqs"}));

    // The webhooks function: no webhook queue of its own.
    let hooks_backend = backend(&stand_in, tasks_table, None);
    let (state, calls) = webhooks_function(
        &sdk,
        &config(hooks_backend.clone(), &addr.to_string()),
        &hooks_backend,
    );
    let response = queued::deliver(&calls, &state.tasks, event(records.clone())).await;
    assert!(handed_again(&response).is_empty(), "{response:?}");

    // Three tries (503, 503, 200), each Judge0's callback: PUT of the submission.
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    for (method, path, body) in &got {
        assert_eq!(method, Method::PUT);
        assert_eq!(path, "/called");
        assert_eq!(body["token"], id.as_str());
        assert_eq!(body["status"]["id"], 3);
        // In base64, as Judge0 sends every callback.
        assert_eq!(body["stdout"], "aGkK");
    }

    // A function whose store cannot be read now has the message handed again.
    let broken = backend(&stand_in, format!("{}-missing", stand_in.prefix), None);
    let (state, calls) =
        webhooks_function(&sdk, &config(broken.clone(), &addr.to_string()), &broken);
    let response = queued::deliver(&calls, &state.tasks, event(records[..1].to_vec())).await;
    assert_eq!(
        handed_again(&response),
        [records[0]["messageId"].as_str().unwrap()]
    );
}

//! The AWS profile as host processes under faults, on moto: a message SQS gives up on
//! ends its task `failed`, a worker killed mid-task has its message come back after the
//! visibility timeout, and a long task keeps its message by extending it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use codebox_adapters::aws::s3::S3BlobStore;
use codebox_adapters::aws::sqs::{SqsConfig, SqsQueue};
use codebox_core::ports::QueueConsumer;
use codebox_tests::Client;
use codebox_tests::procs::{
    Profile, assert_each_completed_with_its_marker, kill_mid_task_then_recover, metric_sum,
    submit_marked, tasks_run, terminate, wait_completed, worker_metrics,
};
use serde_json::json;

async fn queue_of(p: &Profile) -> SqsQueue {
    let aws = p.aws.as_ref().unwrap();
    let sdk = aws.sdk().await;
    SqsQueue::new(
        &sdk,
        SqsConfig {
            queue_url: aws.var("TASK_QUEUE_URL"),
            dead_letter_url: Some(aws.var("TASK_DLQ_URL")),
        },
        Some(Arc::new(S3BlobStore::new(&sdk, aws.var("BLOB_BUCKET")))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sqs_gives_up_on_ends_its_task_failed() {
    let p = Profile::aws();
    let _gateway = p.gateway().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c
        .submit(&json!({"language": "python", "code": "print('hello')"}))
        .await
        .unwrap();
    // Consumers that crash on it: each takes the message and dies without settling.
    let crashing = queue_of(&p).await;
    // The last receive makes the broker dead-letter it.
    codebox_tests::procs::crash_on_next_message(&crashing, 3).await;
    let status = c.status(&id).await.unwrap();
    assert_eq!(status["status"], "queued");
    // A worker finds it among the dead letters and ends the task.
    let (_worker, _) = p.worker().await;
    let r = c.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["verdict"], "internal_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_message_comes_back_and_a_long_task_keeps_its_own() {
    let p = Profile::aws();
    let _gateway = p.gateway().await;
    let (first, port) = p.worker().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    // Longer than the visibility timeout (6 s): only extensions keep it from a second run.
    let long = c
        .submit(&json!({"language": "python", "code": "import time\ntime.sleep(9)\nprint('long')", "limits": {"time_ms": 15000}}))
        .await
        .unwrap();
    let r = c.wait(&long, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["stdout"], "long\n", "{r}");
    let metrics = worker_metrics(port).await;
    let total = |prefix: &str| metric_sum(&metrics, prefix);
    assert!(total("codebox_lease_extensions_total") >= 2.0, "{metrics}");
    assert_eq!(total("codebox_tasks_total{"), 1.0, "run once: {metrics}");
    let queue = queue_of(&p).await;
    assert!(
        queue.receive(Duration::ZERO).await.unwrap().is_none(),
        "the long task's message was deleted after its commit"
    );

    kill_mid_task_then_recover(&p, first, &c).await;
}

/// The commit endpoint is down for 10 s, longer than the queue's visibility timeout:
/// the worker holds what it has (extending the messages), SQS counts no receive for the
/// outage, and every task completes once, with its own output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_down_for_ten_seconds_costs_no_task() {
    const N: usize = 40;
    let p = Profile::aws();
    let mut gateway = p.gateway().await;
    let (mut worker, log) = p.logged_worker(&[]).await;
    let clients = vec![Client::new_user(p.addr()).await.unwrap()];
    let tasks = submit_marked(&clients, N).await;
    wait_completed(&clients, 3, Duration::from_secs(120)).await;
    gateway.0.kill().unwrap();
    gateway.0.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let _gateway = p.gateway().await;
    wait_completed(&clients, N, Duration::from_secs(240)).await;
    assert_each_completed_with_its_marker(&clients, &tasks).await;
    terminate(&mut worker, Duration::from_secs(60));
    assert_eq!(tasks_run(&log), N as u64, "each task ran exactly once");
    let dead = queue_of(&p)
        .await
        .dead_letters()
        .unwrap()
        .receive(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(dead.is_none(), "nothing was dead-lettered");
}

/// The limits' counts live in DynamoDB: two gateways (as two Lambda instances would)
/// share them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_rate_is_shared_by_two_gateways() {
    codebox_tests::procs::auth_rate_is_shared_by_gateways(&Profile::aws()).await;
}

/// The same through S3: an outcome too big for one request (spilled from 1 KiB here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_too_big_for_one_request_goes_through_s3() {
    codebox_tests::procs::big_outcome_goes_through_the_blob_store(&Profile::aws()).await;
}

/// On AWS the webhook secret lives in Secrets Manager (`WEBHOOK_SECRET_ARN`), read by the
/// process that stores outcomes and the one that shows each user their key: a task's
/// webhook call is signed with its owner's key, derived from the stored secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_signed_with_the_key_from_secrets_manager() {
    use axum::http::HeaderMap;
    type Seen = Arc<std::sync::Mutex<Vec<(Option<String>, String, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let record = record.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let at = header("x-codebox-timestamp").unwrap_or_default();
            record
                .lock()
                .unwrap()
                .push((header("x-codebox-signature"), at, body.to_vec()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let p = Profile::aws();
    let _gateway = p.spawn(
        "gateway",
        &[("CALLBACK_ALLOWED_HOSTS", receiver.to_string())],
    );
    codebox_tests::procs::wait_for(Duration::from_secs(30), || async {
        codebox_tests::get(format!("http://{}/health", p.addr()))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let (_worker, _) = p.worker().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c
        .submit(&json!({"language": "python", "code": "print('signed')",
            "webhook": {"url": format!("http://{receiver}/done")}}))
        .await
        .unwrap();
    let mut call = None;
    for _ in 0..600 {
        if let Some(c) = seen.lock().unwrap().first().cloned() {
            call = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (signature, at, body) = call.expect("a webhook call within 60 s");
    let key = c.get_json("/webhook/key").await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        signature,
        codebox_functions::webhooks::signature(key.as_bytes(), &at, &body),
        "signed with the owner's key"
    );
    // The owner's id is the token's subject.
    use base64::Engine;
    let claims = c.token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    let owner = uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
    let stored = &p.aws.as_ref().unwrap().webhook_secret;
    assert_eq!(
        codebox_functions::webhooks::user_key(stored.as_bytes(), owner),
        Some(key),
        "derived from the stored secret"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["result"]["stdout"], "signed\n");
}

/// SQS and S3 over HTTPS, as on AWS: moto behind a TLS terminator with a test CA the
/// worker is told to trust (`SSL_CERT_FILE`), the worker's only way to its queue and
/// bucket. A task's message is received and extended, and its outcome, too big for a
/// commit, is put in S3, all through it (on AWS the worker's image brings the CA bundle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reaches_sqs_and_s3_over_https() {
    let p = Profile::aws();
    let _gateway = p.gateway().await;
    let moto = codebox_tests::aws::endpoint();
    let moto = moto.trim_start_matches("http://").trim_end_matches('/');
    let front = codebox_tests::tls::TlsFront::start(moto.parse().unwrap())
        .await
        .unwrap();
    let (_worker, port) = p
        .worker_with(&[
            ("COMMIT_SPILL_BYTES", "1024".to_owned()),
            ("AWS_ENDPOINT_URL", front.url()),
            (
                "SSL_CERT_FILE",
                front.ca_file.to_string_lossy().into_owned(),
            ),
        ])
        .await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let r = c
        .run(json!({"language": "python", "code": "print('y' * 6000)"}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], format!("{}\n", "y".repeat(6000)));
    let spilled = metric_sum(&worker_metrics(port).await, "codebox_commits_spilled_total");
    assert_eq!(
        spilled, 1.0,
        "the outcome went to S3 through the terminator"
    );
    assert!(front.handshakes() > 0);
}

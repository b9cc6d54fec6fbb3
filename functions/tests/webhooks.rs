//! Webhooks and Judge0's `callback_url`: called when the task ends, in each one's words;
//! never at the deployment's own networks unless listed; no redirect followed; a failed
//! try tried again. The receiver is a real HTTP server on loopback, listed in the
//! deployment's `CALLBACK_ALLOWED_HOSTS` where a test needs it reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use codebox_functions::config::Backends;
use codebox_functions::webhooks::{
    AllowedHosts, Call, SIGNATURE, Sender, Sent, TIMESTAMP, WebhookConfig, signature,
};
use codebox_functions::{AppState, router};
use common::*;
use parking_lot::Mutex;
use secrecy::SecretString;
use serde_json::{Value, json};

const SECRET: &str = "a-webhook-secret-of-at-least-32-characters";

/// What the receiver was sent.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A receiver on loopback answering each request with the next of `answers` (then 200).
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answers: Vec<(StatusCode, Option<&'static str>)>) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let seen = got.clone();
        let app = Router::new().fallback(
            move |method: Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  body: axum::body::Bytes| {
                let (seen, answers) = (seen.clone(), answers.clone());
                async move {
                    seen.lock().push(Received {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        body: body.to_vec(),
                    });
                    let (status, location) =
                        answers.lock().next().unwrap_or((StatusCode::OK, None));
                    let mut res = axum::response::Response::new(axum::body::Body::empty());
                    *res.status_mut() = status;
                    if let Some(l) = location {
                        res.headers_mut().insert("location", l.parse().unwrap());
                    }
                    res
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, got }
    }

    /// The requests once `n` have come (at most 10 s).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            if self.got.lock().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.got.lock().clone()
    }
}

/// The API with the receiver's address allowed (or none) and the signing secret.
fn api(allowed: &str) -> Router {
    router(api_state(allowed))
}

fn api_state(allowed: &str) -> AppState {
    let config = codebox_functions::config::ApiConfig {
        webhooks: WebhookConfig {
            allowed_hosts: AllowedHosts::parse(allowed).unwrap(),
            secret: Some(SecretString::from(SECRET)),
        },
        ..config(3600)
    };
    AppState::build(&config, &Backends::memory()).unwrap()
}

/// The worker's start and a commit that says the task has a webhook.
async fn run_to_end(app: &Router, id: &str, stdout: &str) {
    assert_eq!(start(app, id).await.status, StatusCode::OK);
    let mut commit = code_commit(id, codebox_core::domain::Verdict::Ok, stdout);
    commit["notify"] = json!(true);
    let r = send(app, req("POST", "/commit", Some(WORKER), Some(commit))).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
}

#[tokio::test]
async fn a_task_with_a_webhook_is_told_its_end_signed() {
    let receiver = Receiver::start(vec![]).await;
    let app = api(&receiver.addr.to_string());
    let token = login_as(&app, "hooked").await;
    let url = format!("http://{}/ended?x=1", receiver.addr);
    let body = json!({"language": "python", "code": "print('hi')", "webhook": {"url": url}});
    let id = submitted(&app, &token, body).await;
    assert!(receiver.got.lock().is_empty(), "not called before its end");
    run_to_end(&app, &id, "hi\n").await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "one call");
    let call = &got[0];
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.path, "/ended");
    assert_eq!(call.headers["content-type"], "application/json");
    assert_eq!(call.headers["x-codebox-task"], id.as_str());
    // The body is what `GET /task/{id}` shows.
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    let shown = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None))
        .await
        .json();
    assert_eq!(sent, shown);
    assert_eq!(sent["result"]["stdout"], "hi\n");
    // Signed with the owner's own key, over the time of the call and the body.
    let key_of = |token: String| {
        let app = app.clone();
        async move {
            let r = send(&app, req("GET", "/webhook/key", Some(&token), None)).await;
            assert_eq!(r.status, StatusCode::OK);
            r.json()["key"].as_str().unwrap().to_owned()
        }
    };
    let key = key_of(token.clone()).await;
    let at = call.headers[TIMESTAMP].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - at.parse::<i64>().unwrap()).abs() < 60, "{at}");
    let signed = call.headers[SIGNATURE].to_str().unwrap();
    assert_eq!(signed, signature(key.as_bytes(), at, &call.body).unwrap());
    // Not with the deployment's secret, and not with another user's key: no user can
    // sign a call that another's receiver would take.
    assert_ne!(
        signed,
        signature(SECRET.as_bytes(), at, &call.body).unwrap()
    );
    let other = key_of(login_as(&app, "another").await).await;
    assert_ne!(other, key);
    assert_ne!(signed, signature(other.as_bytes(), at, &call.body).unwrap());
}

/// A deployment without a webhook secret signs nothing and says so to a user who asks
/// for a key; asking needs a login.
#[tokio::test]
async fn without_a_secret_there_is_no_key() {
    let config = codebox_functions::config::ApiConfig {
        webhooks: WebhookConfig::default(),
        ..config(3600)
    };
    let app = router(AppState::build(&config, &Backends::memory()).unwrap());
    assert_eq!(
        send(&app, req("GET", "/webhook/key", None, None))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let token = login_as(&app, "unsigned").await;
    let r = send(&app, req("GET", "/webhook/key", Some(&token), None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("WEBHOOK_SECRET")
    );
}

#[tokio::test]
async fn a_judge0_callback_is_a_put_of_the_default_fields_in_base64() {
    let receiver = Receiver::start(vec![]).await;
    let app = api(&receiver.addr.to_string());
    let token = login_as(&app, "judge0-hooked").await;
    let body = json!({
        "source_code": "print('hi')",
        "language_id": 71,
        "callback_url": format!("http://{}/judge0", receiver.addr),
    });
    let r = send(
        &app,
        req("POST", "/judge0/submissions", Some(&token), Some(body)),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let id = r.json()["token"].as_str().unwrap().to_owned();
    run_to_end(&app, &id, "hi\n").await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, Method::PUT);
    assert_eq!(got[0].path, "/judge0");
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    let mut keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "compile_output",
            "memory",
            "message",
            "status",
            "stderr",
            "stdout",
            "time",
            "token"
        ]
    );
    assert_eq!(sent["token"], id.as_str());
    assert_eq!(sent["status"], json!({"id": 3, "description": "Accepted"}));
    // Signed as codebox's own calls are (Judge0 sends no signature; its clients ignore it).
    let key = send(&app, req("GET", "/webhook/key", Some(&token), None))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = got[0].headers[TIMESTAMP].to_str().unwrap();
    assert_eq!(
        got[0].headers[SIGNATURE].to_str().unwrap(),
        signature(key.as_bytes(), at, &got[0].body).unwrap()
    );
    let stdout = base64::engine::general_purpose::STANDARD
        .decode(sent["stdout"].as_str().unwrap().replace('\n', ""))
        .unwrap();
    assert_eq!(stdout, b"hi\n");
}

#[tokio::test]
async fn webhooks_at_the_deployments_own_networks_are_refused() {
    let receiver = Receiver::start(vec![]).await;
    // Listed for another port only.
    let app = api("127.0.0.1:1");
    let token = login_as(&app, "ssrf").await;
    for (url, words) in [
        (format!("http://{}/", receiver.addr), "127.0.0.1"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        ("http://10.0.0.1/".to_owned(), "private"),
        ("http://[::ffff:127.0.0.1]:8080/".to_owned(), "loopback"),
        ("http://[fd00:ec2::254]/".to_owned(), "unique local"),
        (
            "http://localhost:9/".to_owned(),
            "does not resolve to public addresses only",
        ),
        ("http://user:pw@example.com/".to_owned(), "user name"),
        ("ftp://example.com/".to_owned(), "http"),
    ] {
        let body = json!({"language": "python", "code": "1", "webhook": {"url": url}});
        let r = send(&app, req("POST", "/task", Some(&token), Some(body))).await;
        let detail = r.problem(StatusCode::BAD_REQUEST);
        assert!(detail.starts_with("webhook.url: "), "{url}: {detail}");
        assert!(detail.contains(words), "{url}: {detail}");
    }
    // Judge0's shape: 422, keyed by the field.
    let body = json!({"source_code": "1", "language_id": 71, "callback_url": "http://10.1.2.3/cb"});
    let r = send(
        &app,
        req("POST", "/judge0/submissions", Some(&token), Some(body)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = r.json()["callback_url"][0].as_str().unwrap().to_owned();
    assert!(reason.contains("private"), "{reason}");
    // Nothing was stored, nothing called.
    let listed = send(&app, req("GET", "/task", Some(&token), None))
        .await
        .json();
    assert_eq!(listed["items"], json!([]));
    assert!(receiver.got.lock().is_empty());
}

/// A name that resolves to loopback when the call is made (DNS rebinding: it may have
/// resolved elsewhere when the task was submitted) is refused as it connects.
#[tokio::test]
async fn a_call_connects_to_no_refused_address_whatever_the_name() {
    let receiver = Receiver::start(vec![]).await;
    let sender = Sender::new(AllowedHosts::default()).unwrap();
    let call = Call {
        method: reqwest::Method::POST,
        url: format!("http://localhost:{}/", receiver.addr.port())
            .parse()
            .unwrap(),
        body: b"{}".to_vec(),
        headers: vec![],
    };
    match sender.send(&call).await {
        Sent::Failed(why) => assert!(why.contains("may not reach"), "{why}"),
        other => panic!("reached a loopback receiver: {other:?}"),
    }
    assert!(receiver.got.lock().is_empty());
    // Listed, the same name is reached.
    let listed = Sender::new(AllowedHosts::parse("localhost").unwrap()).unwrap();
    assert_eq!(listed.send(&call).await, Sent::Answered(200));
    assert_eq!(receiver.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed_and_failures_are_tried_again() {
    let receiver = Receiver::start(vec![
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, None),
        (
            StatusCode::TEMPORARY_REDIRECT,
            Some("http://169.254.169.254/"),
        ),
    ])
    .await;
    let sender = Sender::new(AllowedHosts::parse(&receiver.addr.to_string()).unwrap()).unwrap();
    let call = Call {
        method: reqwest::Method::PUT,
        url: format!("http://{}/cb", receiver.addr).parse().unwrap(),
        body: b"{}".to_vec(),
        headers: vec![],
    };
    // 503, then 429, then a redirect: the third try's answer stands, not followed.
    assert_eq!(sender.send(&call).await, Sent::Answered(307));
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.path == "/cb" && r.method == Method::PUT)
    );
}

/// A stopping API makes the calls of the tasks that ended before the stop, their tries
/// again included: the gateway and the embedded process drain them after their server
/// ends, before the process does.
#[tokio::test]
async fn calls_under_way_are_made_before_the_api_stops() {
    let receiver = Receiver::start(vec![
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::SERVICE_UNAVAILABLE, None),
    ])
    .await;
    let state = api_state(&receiver.addr.to_string());
    let app = router(state.clone());
    let token = login_as(&app, "drained").await;
    let url = format!("http://{}/hook", receiver.addr);
    let body = json!({"language": "python", "code": "print(1)", "webhook": {"url": url}});
    let id = submitted(&app, &token, body).await;
    run_to_end(&app, &id, "1\n").await;
    // The stop, as the task's end is stored: the 503s' pauses (0.5 s, 1 s) still to come.
    let left = state
        .webhook_calls
        .as_ref()
        .unwrap()
        .drain(codebox_functions::webhooks::DRAIN)
        .await;
    assert_eq!(left, 0);
    let got = receiver.got.lock().clone();
    assert_eq!(
        got.len(),
        3,
        "the third try, answered 200, is made before the stop ends"
    );
    assert!(got.iter().all(|r| r.path == "/hook"));
}

/// A webhook queue (SQS on AWS) that refuses its first `refusals` hand-ons, as a queue
/// out for a moment does, and records the tasks it takes.
struct FlakyQueue {
    refusals: Mutex<usize>,
    taken: Mutex<Vec<codebox_core::domain::TaskId>>,
}

#[async_trait::async_trait]
impl codebox_core::ports::EndNotifier for FlakyQueue {
    async fn ended(&self, task: codebox_core::domain::Task) -> codebox_core::error::Result<()> {
        let mut refusals = self.refusals.lock();
        if *refusals > 0 {
            *refusals -= 1;
            return Err(codebox_core::Error::Unavailable("the queue is out".into()));
        }
        self.taken.lock().push(task.id);
        Ok(())
    }
}

/// A webhook the queue did not take fails the commit (the outcome stays stored); the
/// worker's next try of the same commit hands it on; another run's outcome does not.
#[tokio::test]
async fn a_webhook_not_handed_on_is_handed_on_when_the_commit_is_tried_again() {
    let queue = Arc::new(FlakyQueue {
        refusals: Mutex::new(1),
        taken: Mutex::default(),
    });
    let mut backends = Backends::memory();
    backends.webhook_queue = Some(queue.clone());
    let config = codebox_functions::config::ApiConfig {
        webhooks: WebhookConfig {
            allowed_hosts: AllowedHosts::parse("127.0.0.1:9").unwrap(),
            secret: None,
        },
        ..config(3600)
    };
    let app = router(AppState::build(&config, &backends).unwrap());
    let token = login_as(&app, "hooked").await;
    let body = json!({"language": "python", "code": "print('hi')",
        "webhook": {"url": "http://127.0.0.1:9/ended"}});
    let id = submitted(&app, &token, body).await;
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    let mut commit = code_commit(&id, codebox_core::domain::Verdict::Ok, "hi\n");
    commit["notify"] = json!(true);
    let commit_it = |commit: Value| send(&app, req("POST", "/commit", Some(WORKER), Some(commit)));

    let first = commit_it(commit.clone()).await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the worker is told to try again"
    );
    assert!(queue.taken.lock().is_empty());
    let shown = send(&app, req("GET", &format!("/task/{id}"), Some(&token), None)).await;
    assert_eq!(shown.json()["status"], "completed", "the outcome is stored");

    let again = commit_it(commit.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        queue.taken.lock().len(),
        1,
        "handed on at the commit's second try"
    );
    assert_eq!(queue.taken.lock()[0].to_string(), id);

    // Another run's outcome (a lapsed lease's) is ignored, and so is its webhook.
    let mut other = code_commit(&id, codebox_core::domain::Verdict::Ok, "other\n");
    other["notify"] = json!(true);
    assert_eq!(commit_it(other).await.status, StatusCode::OK);
    assert_eq!(
        queue.taken.lock().len(),
        1,
        "not handed on for another outcome"
    );
}

/// A blob store whose reads fail while `out` is set, as a store out for a moment.
#[derive(Default)]
struct FlakyBlobs {
    inner: codebox_core::memory::MemoryBlobStore,
    out: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl codebox_core::ports::BlobStore for FlakyBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> codebox_core::error::Result<()> {
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> codebox_core::error::Result<Option<Vec<u8>>> {
        if self.out.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(codebox_core::Error::Unavailable(
                "the blob store is out".into(),
            ));
        }
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> codebox_core::error::Result<()> {
        self.inner.delete(key).await
    }
}

/// An image task's webhook body holds its output, read from the blob store: a store out
/// at the commit fails it (the outcome stored), and the worker's next try makes the call.
#[tokio::test]
async fn a_webhook_whose_body_cannot_be_read_yet_is_called_at_the_commits_next_try() {
    let receiver = Receiver::start(vec![]).await;
    let blobs = Arc::new(FlakyBlobs::default());
    let mut backends = Backends::memory();
    backends.blobs = blobs.clone();
    let config = codebox_functions::config::ApiConfig {
        webhooks: WebhookConfig {
            allowed_hosts: AllowedHosts::parse(&receiver.addr.to_string()).unwrap(),
            secret: None,
        },
        ..config(3600)
    };
    let app = router(AppState::build(&config, &backends).unwrap());
    let token = login_as(&app, "hooked").await;
    let input = base64::engine::general_purpose::STANDARD.encode(png(4, 3));
    let body = json!({"kind": "image", "image_base64": input,
        "filter": {"name": "blur", "parameters": {"sigma": 2.0}},
        "webhook": {"url": format!("http://{}/ended", receiver.addr)}});
    let id = submitted(&app, &token, body).await;
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    let key = format!("output/{id}.png");
    codebox_core::ports::BlobStore::put(blobs.as_ref(), &key, png(4, 3))
        .await
        .unwrap();
    let commit = json!({"task_id": id, "status": "completed", "notify": true,
        "result": {"kind": "image", "verdict": "ok", "output_key": key, "error": null}});
    let commit_it = || {
        send(
            &app,
            req("POST", "/commit", Some(WORKER), Some(commit.clone())),
        )
    };

    blobs.out.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(commit_it().await.status, StatusCode::SERVICE_UNAVAILABLE);
    blobs.out.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(commit_it().await.status, StatusCode::OK);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "called once, at the second try");
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(sent["result"]["verdict"], "ok", "{sent}");
}

//! What the handler tests share: the API on memory backends, requests, replies, and the
//! worker's side of a task.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use codebox_core::domain::{Commit, TaskResult, TaskStatus, Verdict};
use codebox_functions::config::{ApiConfig, Backend, Backends};
use codebox_functions::{AppState, router};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const WORKER: &str = "worker-token-for-tests";

pub fn config(ttl: i64) -> ApiConfig {
    ApiConfig {
        jwt_secret: SecretString::from("test-secret-test-secret-test-secret!"),
        worker_token: SecretString::from(WORKER),
        token_ttl_secs: ttl,
        bcrypt_cost: 4,
        backend: Backend::Memory,
        // Generous: these tests log in many users from one (unknown) address.
        limits: codebox_core::limits::LimitsConfig {
            auth_per_minute: 10_000,
            ..Default::default()
        },
        cors_origins: vec![],
        events_max: codebox_functions::state::EVENTS_MAX,
        inline_image_max: codebox_core::png::MAX_BYTES,
        public_url: None,
        webhooks: Default::default(),
        judge0_signals: Default::default(),
    }
}

pub fn state_with(ttl: i64, backends: &Backends) -> AppState {
    AppState::build(&config(ttl), backends).unwrap()
}

pub fn app() -> Router {
    router(state_with(3600, &Backends::memory()))
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts a problem+json body with this status and returns its detail.
    pub fn problem(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.header("content-type"), "application/problem+json");
        let v = self.json();
        assert_eq!(v["status"], status.as_u16());
        assert_eq!(v["type"], "about:blank");
        assert!(v["title"].is_string());
        v["detail"].as_str().unwrap().to_owned()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

pub fn req(method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

pub async fn login_as(app: &Router, name: &str) -> String {
    let creds = json!({"username": name, "password": "password123"});
    let r = send(app, req("POST", "/register", None, Some(creds.clone()))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = send(app, req("POST", "/login", None, Some(creds))).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["token"].as_str().unwrap().to_owned()
}

pub async fn submit(app: &Router, token: &str) -> String {
    submitted(
        app,
        token,
        json!({"language": "python", "code": "print('hi')"}),
    )
    .await
}

/// Submits `body` as `token`'s task; its id.
pub async fn submitted(app: &Router, token: &str, body: Value) -> String {
    let r = send(app, req("POST", "/task", Some(token), Some(body))).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.json()["id"].as_str().unwrap().to_owned()
}

pub fn code_commit(id: &str, verdict: Verdict, stdout: &str) -> Value {
    let mut result = codebox_core::domain::CodeResult::empty(verdict);
    result.stdout = stdout.into();
    result.exit_code = Some(0);
    serde_json::to_value(Commit {
        task_id: id.parse().unwrap(),
        status: TaskStatus::Completed,
        result: TaskResult::Code(result),
        notify: false,
    })
    .unwrap()
}

/// `POST /commit/start` of `id`, as its worker sends it.
pub async fn start(app: &Router, id: &str) -> Reply {
    send(
        app,
        req(
            "POST",
            "/commit/start",
            Some(WORKER),
            Some(json!({"task_id": id})),
        ),
    )
    .await
}

/// `POST /commit` of a code outcome of `id`, as its worker sends it.
pub async fn commit(app: &Router, id: &str, verdict: Verdict, stdout: &str) -> Reply {
    send(
        app,
        req(
            "POST",
            "/commit",
            Some(WORKER),
            Some(code_commit(id, verdict, stdout)),
        ),
    )
    .await
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 7, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

//! The service's own routes and settings: discovery, health, CORS, secrets, the public URL.

use super::*;

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

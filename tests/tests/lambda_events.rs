//! Real API Gateway HTTP API (v2) events (`functions/tests/fixtures`), as Lambda receives
//! them, through each handler's Lambda app: the same request conversion
//! `lambda_http::run` does, no server. Each flow runs on the in-memory backends and on
//! the AWS ones (DynamoDB, SQS, S3 on moto, secrets read from Secrets Manager by ARN).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use codebox_adapters::aws::secrets::secret_string;
use codebox_functions::config::{ApiConfig, AwsBackend, Backend, Backends};
use codebox_functions::{AppState, handlers, lambda};
use codebox_tests::aws::StandIn;
use http_body_util::BodyExt;
use lambda_http::Request;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../functions/tests/fixtures/", $name))
    };
}

fn config(jwt_secret: SecretString, backend: Backend) -> ApiConfig {
    ApiConfig {
        jwt_secret,
        worker_token: SecretString::from("lambda-worker"),
        token_ttl_secs: 900,
        bcrypt_cost: 4,
        backend,
        limits: Default::default(),
        cors_origins: vec![],
        events_max: codebox_functions::state::EVENTS_MAX,
        inline_image_max: codebox_core::png::MAX_BYTES,
        public_url: None,
        webhooks: Default::default(),
        judge0_signals: Default::default(),
    }
}

fn memory() -> AppState {
    let secret = SecretString::from("lambda-secret-lambda-secret-lambda-secret");
    AppState::build(&config(secret, Backend::Memory), &Backends::memory()).unwrap()
}

/// A Lambda function's state on the AWS backends, as `BACKEND=aws` builds it.
async fn aws() -> AppState {
    let stand_in = StandIn::provision(60, 3);
    let sdk = stand_in.sdk().await;
    let secret = secret_string(&sdk, &stand_in.var("JWT_SECRET_ARN"))
        .await
        .unwrap();
    let backend = AwsBackend {
        users_table: stand_in.var("USERS_TABLE"),
        sessions_table: stand_in.var("SESSIONS_TABLE"),
        tasks_table: stand_in.var("TASKS_TABLE"),
        idempotency_table: stand_in.var("IDEMPOTENCY_TABLE"),
        limits_table: stand_in.var("LIMITS_TABLE"),
        queue_url: stand_in.var("TASK_QUEUE_URL"),
        blob_bucket: stand_in.var("BLOB_BUCKET"),
        task_retention_days: None,
        webhook_queue_url: None,
    };
    let backends = Backends::aws_with(&sdk, &backend);
    AppState::build(&config(secret, Backend::Aws(backend)), &backends).unwrap()
}

fn event(json: &str) -> Request {
    lambda_http::request::from_str(json).expect("a valid API Gateway v2 event")
}

async fn call(app: &Router, req: Request) -> (StatusCode, axum::http::HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, json)
}

/// `req` with the bearer token of the fixtures' user (registered and logged in through
/// the Lambda apps).
async fn authorized(state: &AppState, mut req: Request) -> Request {
    let login = lambda::app(handlers::login::router(state.clone()));
    let register = lambda::app(handlers::register::router(state.clone()));
    call(&register, event(fixture!("register.json"))).await;
    let (_, _, body) = call(&login, event(fixture!("login.json"))).await;
    let token = body["token"].as_str().unwrap().to_owned();
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    req
}

#[tokio::test]
async fn register_login_then_submit_through_lambda_apps() {
    register_login_then_submit(memory()).await;
}

#[tokio::test]
async fn register_login_then_submit_through_lambda_apps_on_aws() {
    register_login_then_submit(aws().await).await;
}

async fn register_login_then_submit(state: AppState) {
    let register = lambda::app(handlers::register::router(state.clone()));
    let login = lambda::app(handlers::login::router(state.clone()));
    let create = lambda::app(handlers::create_task::router(state.clone()));
    let list = lambda::app(handlers::list_tasks::router(state.clone()));

    let (status, _, body) = call(&register, event(fixture!("register.json"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "lambda-ada");

    let (status, _, body) = call(&login, event(fixture!("login.json"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();

    // A base64-encoded body, as API Gateway sends binary-safe payloads.
    let mut req = event(fixture!("create-task-base64.json"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (status, headers, body) = call(&create, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers[header::LOCATION], format!("/task/{id}").as_str());

    let mut req = event(fixture!("list-tasks.json"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (status, _, body) = call(&list, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], id);
}

#[tokio::test]
async fn no_token_is_401_with_the_challenge() {
    no_token_is_401(memory()).await;
}

#[tokio::test]
async fn no_token_is_401_with_the_challenge_on_aws() {
    no_token_is_401(aws().await).await;
}

async fn no_token_is_401(state: AppState) {
    let app = lambda::app(handlers::get_status::router(state));
    let (status, headers, body) = call(&app, event(fixture!("get-status-no-token.json"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn a_rejected_body_is_problem_json_400() {
    rejected_body_is_400(memory()).await;
}

#[tokio::test]
async fn a_rejected_body_is_problem_json_400_on_aws() {
    rejected_body_is_400(aws().await).await;
}

async fn rejected_body_is_400(state: AppState) {
    let app = lambda::app(handlers::create_task::router(state.clone()));
    let req = authorized(&state, event(fixture!("create-task-unknown-field.json"))).await;
    let (status, headers, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(
        body["detail"].as_str().unwrap().contains("priority"),
        "{body}"
    );
}

#[tokio::test]
async fn a_route_of_another_function_is_a_404_problem() {
    // The status function receives a register event (a misrouted API Gateway route).
    let app = lambda::app(handlers::get_status::router(memory()));
    let (status, headers, _) = call(&app, event(fixture!("register.json"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn a_wait_that_runs_out_answers_202_through_the_lambda_app() {
    wait_runs_out(memory()).await;
}

#[tokio::test]
async fn a_wait_that_runs_out_answers_202_through_the_lambda_app_on_aws() {
    wait_runs_out(aws().await).await;
}

/// `POST /task?wait=true&wait_s=1` with no worker to run it: the function answers 202
/// after the wait (well inside its 29 s timeout and API Gateway's 30 s), never a gateway
/// timeout.
async fn wait_runs_out(state: AppState) {
    let app = lambda::app(handlers::create_task::router(state.clone()));
    let req = authorized(&state, event(fixture!("create-task-wait.json"))).await;
    let started = std::time::Instant::now();
    let (status, _, body) = call(&app, req).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued");
    assert!(
        (std::time::Duration::from_millis(900)..std::time::Duration::from_secs(10))
            .contains(&waited),
        "{waited:?}"
    );
}

/// A result bigger than a Lambda response carries (here 5 MiB of output, as a judged task's
/// may be far more) is answered `303 See Other` to a short-lived presigned URL, which
/// serves the same JSON; a small one is answered as usual. On the AWS backends (moto).
#[tokio::test]
async fn a_result_too_big_for_lambda_is_a_redirect_to_its_presigned_copy_on_aws() {
    use codebox_core::domain::{CodeResult, Commit, TaskResult, TaskStatus, Verdict};
    use codebox_core::ports::TaskControl;
    let state = aws().await;
    let create = lambda::app(handlers::create_task::router(state.clone()));
    let get_result = lambda::with_offload(
        lambda::app(handlers::get_result::router(state.clone())),
        state.large_responses.clone(),
    );
    let mut ids = Vec::new();
    for bytes in [5 * 1024 * 1024, 16] {
        let req = authorized(&state, event(fixture!("create-task-base64.json"))).await;
        let auth = req.headers()[header::AUTHORIZATION].clone();
        let (status, _, body) = call(&create, req).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            state.tasks.start(id, uuid::Uuid::new_v4()).await.unwrap(),
            codebox_core::domain::StartDecision::Run
        );
        let result = CodeResult {
            stdout: vec![b'x'; bytes].into(),
            ..CodeResult::empty(Verdict::Ok)
        };
        let commit = Commit {
            task_id: id,
            status: TaskStatus::Completed,
            result: TaskResult::Code(result),
            notify: false,
        };
        state.tasks.commit(&commit).await.unwrap();
        ids.push((id, auth, bytes));
    }
    for (id, auth, bytes) in ids {
        let path = format!("/result/{id}");
        let json = fixture!("list-tasks.json")
            .replace("\"/task\"", &format!("\"{path}\""))
            .replace("GET /task", &format!("GET {path}"))
            .replace("limit=5", "");
        let mut req = event(&json);
        req.headers_mut().insert(header::AUTHORIZATION, auth);
        let res = get_result.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let result: Value = if bytes > lambda::LAMBDA_BODY_LIMIT {
            assert_eq!(parts.status, StatusCode::SEE_OTHER);
            assert!(body.is_empty());
            let url = parts.headers[header::LOCATION].to_str().unwrap();
            // Followed as any HTTP client does, without the API's credentials.
            let copy = codebox_tests::get(url).await.unwrap();
            assert_eq!(copy.status(), 200);
            assert_eq!(copy.headers()[header::CONTENT_TYPE], "application/json");
            copy.json().await.unwrap()
        } else {
            assert_eq!(parts.status, StatusCode::OK);
            serde_json::from_slice(&body).unwrap()
        };
        assert_eq!(result["id"], id.to_string());
        assert_eq!(result["stdout"].as_str().unwrap().len(), bytes, "{id}");
    }
}

/// An API Gateway event of `method path` with a JSON body, from the fixtures' shape.
fn api_event(method: &str, path: &str, body: &Value) -> Request {
    let mut e: Value = serde_json::from_str(fixture!("create-task-base64.json")).unwrap();
    e["routeKey"] = format!("{method} {path}").into();
    e["rawPath"] = path.into();
    e["requestContext"]["routeKey"] = e["routeKey"].clone();
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["isBase64Encoded"] = false.into();
    e["body"] = if body.is_null() {
        "".into()
    } else {
        body.to_string().into()
    };
    event(&e.to_string())
}

/// A PNG of noise: it does not compress, so `w × h × 4` bytes and a little more.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let img = image::RgbaImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgba(state.to_le_bytes())
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG bigger than a Lambda invocation carries goes up through a presigned S3 URL
/// (`POST /task/upload`), is taken by the image task by its key, and its result comes back
/// through a presigned URL too (`303`): on the AWS backends (moto), no byte of it inside an
/// invocation.
#[tokio::test]
async fn an_image_too_big_for_lambda_goes_up_and_comes_back_through_s3_on_aws() {
    use codebox_core::domain::{Commit, ImageResult, TaskResult, TaskSpec, TaskStatus, Verdict};
    use codebox_core::ports::TaskControl;
    let state = aws().await;
    let create = lambda::app(handlers::create_task::router(state.clone()));
    let get_result = lambda::with_offload(
        lambda::app(handlers::get_result::router(state.clone())),
        state.large_responses.clone(),
    );
    let png = noise_png(1600, 1100);
    assert!(png.len() > 7_000_000, "{}", png.len());

    let ask = authorized(
        &state,
        api_event(
            "POST",
            "/task/upload",
            &serde_json::json!({"size": png.len()}),
        ),
    )
    .await;
    let auth = ask.headers()[header::AUTHORIZATION].clone();
    let (status, _, granted) = call(&create, ask).await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    let url = granted["upload_url"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Signature="),
        "a presigned S3 URL: {url}"
    );
    assert!(
        url.contains("content-length"),
        "the length is signed: {url}"
    );
    let http = codebox_tests::http();
    let mut put = http.put(url).body(png.clone());
    for (name, value) in granted["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let r = put.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    let mut submit = api_event(
        "POST",
        "/task",
        &serde_json::json!({"kind": "image", "image_key": granted["image_key"], "filter": {"name": "flipx"}}),
    );
    submit
        .headers_mut()
        .insert(header::AUTHORIZATION, auth.clone());
    let (status, _, accepted) = call(&create, submit).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id: uuid::Uuid = accepted["id"].as_str().unwrap().parse().unwrap();

    // The worker's part: the task's own copy of the upload in, the output PNG out.
    let task = state.tasks.store().get(id).await.unwrap().unwrap();
    let TaskSpec::Image(spec) = &task.spec else {
        panic!("an image task")
    };
    assert_eq!(
        state
            .tasks
            .blobs()
            .get(&spec.input_key)
            .await
            .unwrap()
            .as_deref(),
        Some(png.as_slice())
    );
    assert_eq!(
        state.tasks.start(id, uuid::Uuid::new_v4()).await.unwrap(),
        codebox_core::domain::StartDecision::Run
    );
    let output_key = codebox_core::tasks::output_key(id);
    state
        .tasks
        .blobs()
        .put_typed(&output_key, png.clone(), "image/png")
        .await
        .unwrap();
    state
        .tasks
        .commit(&Commit {
            task_id: id,
            status: TaskStatus::Completed,
            result: TaskResult::Image(ImageResult {
                verdict: Verdict::Ok,
                output_key: Some(output_key),
                error: None,
            }),
            notify: false,
        })
        .await
        .unwrap();

    let mut fetch = api_event("GET", &format!("/result/{id}"), &Value::Null);
    fetch.headers_mut().insert(header::AUTHORIZATION, auth);
    let res = get_result.clone().oneshot(fetch).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let copy = codebox_tests::get(&location).await.unwrap();
    assert_eq!(copy.status(), 200);
    assert_eq!(copy.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(copy.bytes().await.unwrap().as_ref(), png.as_slice());
}

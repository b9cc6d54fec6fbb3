//! Real API Gateway HTTP API (v2) events, as Lambda receives them, through each handler's
//! Lambda app: the same request conversion `lambda_http::run` does, no server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use codebox_functions::config::{ApiConfig, Backend, Backends};
use codebox_functions::{AppState, handlers, lambda};
use http_body_util::BodyExt;
use lambda_http::Request;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

fn state() -> AppState {
    AppState::build(
        &ApiConfig {
            jwt_secret: SecretString::from("lambda-secret-lambda-secret-lambda-secret"),
            worker_token: SecretString::from("lambda-worker"),
            token_ttl_secs: 900,
            bcrypt_cost: 4,
            backend: Backend::Memory,
        },
        &Backends::memory(),
    )
    .unwrap()
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

#[tokio::test]
async fn register_login_then_submit_through_lambda_apps() {
    let state = state();
    let register = lambda::app(handlers::register::router(state.clone()));
    let login = lambda::app(handlers::login::router(state.clone()));
    let create = lambda::app(handlers::create_task::router(state.clone()));
    let list = lambda::app(handlers::list_tasks::router(state.clone()));

    let (status, _, body) = call(&register, event(include_str!("fixtures/register.json"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "lambda-ada");

    let (status, _, body) = call(&login, event(include_str!("fixtures/login.json"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();

    // A base64-encoded body, as API Gateway sends binary-safe payloads.
    let mut req = event(include_str!("fixtures/create-task-base64.json"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (status, headers, body) = call(&create, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers[header::LOCATION], format!("/task/{id}").as_str());

    let mut req = event(include_str!("fixtures/list-tasks.json"));
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
    let app = lambda::app(handlers::get_status::router(state()));
    let (status, headers, body) = call(
        &app,
        event(include_str!("fixtures/get-status-no-token.json")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn a_rejected_body_is_problem_json_400() {
    let state = state();
    let login = lambda::app(handlers::login::router(state.clone()));
    let register = lambda::app(handlers::register::router(state.clone()));
    call(&register, event(include_str!("fixtures/register.json"))).await;
    let (_, _, body) = call(&login, event(include_str!("fixtures/login.json"))).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let app = lambda::app(handlers::create_task::router(state));
    let mut req = event(include_str!("fixtures/create-task-unknown-field.json"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
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
    let app = lambda::app(handlers::get_status::router(state()));
    let (status, headers, _) = call(&app, event(include_str!("fixtures/register.json"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
}

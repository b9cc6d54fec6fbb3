//! `POST /commit/start` and fair shares: a worker's start of a task whose owner runs one
//! already, never deferred, is answered `deferred` (with `leased`, which a worker that
//! knows no deferral reads as "ask again"); a worker from before leases is never deferred.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

async fn start_with(app: &axum::Router, body: Value) -> (Value, Value, Value) {
    let r = send(app, req("POST", "/commit/start", Some(WORKER), Some(body))).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    (j["run"].clone(), j["leased"].clone(), j["deferred"].clone())
}

#[tokio::test]
async fn a_second_task_is_deferred_once_and_an_old_worker_never() {
    let app = app();
    let token = login_as(&app, "fay").await;
    let (first, second, third) = (
        submit(&app, &token).await,
        submit(&app, &token).await,
        submit(&app, &token).await,
    );
    let lease = || uuid::Uuid::new_v4();
    let run = (json!(true), json!(false), json!(false));
    let deferred = (json!(false), json!(true), json!(true));
    assert_eq!(
        start_with(&app, json!({"task_id": first, "lease": lease()})).await,
        run
    );
    assert_eq!(
        start_with(&app, json!({"task_id": second, "lease": lease()})).await,
        deferred,
        "its owner runs one, and it was never deferred"
    );
    assert_eq!(
        start_with(
            &app,
            json!({"task_id": second, "lease": lease(), "deferrals": 1})
        )
        .await,
        run,
        "deferred once, under the cap of 3"
    );
    // A worker from before leases would ack a message it is not told to run.
    assert_eq!(start_with(&app, json!({"task_id": third})).await, run);
    let bad = send(
        &app,
        req(
            "POST",
            "/commit/start",
            Some(WORKER),
            Some(json!({"task_id": third, "lease": lease(), "deferrals": -1})),
        ),
    )
    .await;
    assert!(bad.status.is_client_error(), "{}", bad.status);
}

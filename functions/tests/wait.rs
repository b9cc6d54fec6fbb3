//! `POST /task?wait=true` (and the Judge0 layer's `wait=true`, the same wait): answered
//! by the task's end as it is stored, where the event bus carries status events; by
//! polling the summary where it does not. Time is paused: it passes only when every
//! task of the test waits on a timer, so "no time passed" means no poll was needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use codebox_core::domain::Verdict;
use common::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn a_waiting_submission_is_answered_when_its_end_is_stored() {
    let app = app();
    let token = login_as(&app, "waiter").await;
    let body = json!({"language": "python", "code": "print('hi')"});
    let waiting = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move {
            send(
                &app,
                req(
                    "POST",
                    "/task?wait=true&wait_s=25",
                    Some(&token),
                    Some(body),
                ),
            )
            .await
        })
    };
    // The task, once the waiting request has stored it.
    let id = loop {
        let listed = send(&app, req("GET", "/task", Some(&token), None)).await;
        if let Some(id) = listed.json()["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        tokio::task::yield_now().await;
    };
    // Let the wait settle into its first pause (20 ms of polling at most).
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    let stored = tokio::time::Instant::now();
    assert_eq!(
        commit(&app, &id, Verdict::Ok, "hi\n").await.status,
        StatusCode::OK
    );
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "the wait saw the end");
    assert_eq!(answer.json()["result"]["stdout"], "hi\n");
    assert!(
        stored.elapsed() < Duration::from_millis(1),
        "answered {:?} after the end was stored: by a poll, not the end's event",
        stored.elapsed()
    );
}

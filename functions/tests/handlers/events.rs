//! A task's event stream after the fact: its log replayed for a late client, resumed
//! after `Last-Event-ID`, each run's output tagged with its attempt.

use super::*;

/// The stream's events: (name, id, data).
fn events_of(r: &Reply) -> Vec<(String, Option<u64>, Value)> {
    let mut parser = codebox_api::events::Parser::new();
    parser
        .push(&r.bytes)
        .into_iter()
        .map(|e| {
            let id = e.id.as_deref().map(|id| id.parse().unwrap());
            (e.event, id, serde_json::from_str(&e.data).unwrap())
        })
        .collect()
}

async fn progress(app: &Router, id: &str, attempt: u32, events: Value) -> Reply {
    let body = json!({"task_id": id, "attempt": attempt, "events": events});
    send(app, req("POST", "/commit/events", Some(WORKER), Some(body))).await
}

async fn stream(app: &Router, token: &str, id: &str, last: Option<&str>) -> Reply {
    let mut r = req("GET", &format!("/task/{id}/events"), Some(token), None);
    if let Some(last) = last {
        r.headers_mut()
            .insert("last-event-id", last.parse().unwrap());
    }
    send(app, r).await
}

#[tokio::test]
async fn a_late_client_hears_each_runs_output_and_a_returning_one_only_what_it_missed() {
    let app = app();
    let token = login_as(&app, "lena").await;
    let id = submit(&app, &token).await;
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    // The first run printed, then its sandbox was lost; the second ran to the end.
    let first = progress(&app, &id, 1, json!([{"event": "stdout", "data": "one\n"}])).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let second = json!([
        {"event": "stdout", "data": "two\n"},
        {"event": "stderr", "data": "warn\n"},
    ]);
    assert_eq!(
        progress(&app, &id, 2, second).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        commit(&app, &id, Verdict::Ok, "two\n")
            .await
            .status
            .is_success()
    );

    let all = events_of(&stream(&app, &token, &id, None).await);
    let output: Vec<(&str, Value)> = all
        .iter()
        .filter(|(name, ..)| name == "stdout" || name == "stderr")
        .map(|(name, _, data)| (name.as_str(), data.clone()))
        .collect();
    assert_eq!(
        output,
        [
            ("stdout", json!({"data": "one\n", "attempt": 1})),
            ("stdout", json!({"data": "two\n", "attempt": 2})),
            ("stderr", json!({"data": "warn\n", "attempt": 2})),
        ],
        "the whole log, each run told apart: {all:?}"
    );
    assert_eq!(all.last().map(|e| e.0.as_str()), Some("done"));
    // (A parser's id is the last one the stream set: `done` keeps the output's.)
    let ids: Vec<u64> = all
        .iter()
        .filter(|(name, ..)| name == "stdout" || name == "stderr")
        .filter_map(|e| e.1)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]) && ids.len() == 3,
        "the log's events are numbered in order: {ids:?}"
    );

    // Back after a broken stream: only what followed the last event it had.
    let had = ids[0].to_string();
    let resumed = events_of(&stream(&app, &token, &id, Some(&had)).await);
    let output: Vec<&Value> = resumed
        .iter()
        .filter(|(name, ..)| name == "stdout" || name == "stderr")
        .map(|(.., data)| data)
        .collect();
    assert_eq!(
        output,
        [
            &json!({"data": "two\n", "attempt": 2}),
            &json!({"data": "warn\n", "attempt": 2})
        ],
        "{resumed:?}"
    );
    let last = ids[2].to_string();
    let caught_up = events_of(&stream(&app, &token, &id, Some(&last)).await);
    assert!(
        caught_up
            .iter()
            .all(|(name, ..)| name != "stdout" && name != "stderr"),
        "{caught_up:?}"
    );
    assert_eq!(caught_up.last().map(|e| e.0.as_str()), Some("done"));

    let bad = stream(&app, &token, &id, Some("seven")).await;
    assert!(
        bad.problem(StatusCode::BAD_REQUEST)
            .contains("Last-Event-ID"),
        "{}",
        bad.problem(StatusCode::BAD_REQUEST)
    );
}

/// The run an event comes from is the API's to say, from the request's `attempt`.
#[tokio::test]
async fn a_worker_names_its_run_only_by_the_requests_attempt() {
    let app = app();
    let token = login_as(&app, "otto").await;
    let id = submit(&app, &token).await;
    let forged = progress(&app, &id, 1, json!([{"event": "attempt", "attempt": 9}])).await;
    assert!(forged.problem(StatusCode::BAD_REQUEST).contains("attempt"));
    let zero = progress(&app, &id, 0, json!([{"event": "stdout", "data": "x"}])).await;
    assert!(zero.problem(StatusCode::BAD_REQUEST).contains("attempt"));
}

/// A run given up on that still reports (its lease lapsed, another run took over) is not
/// shown, and does not unsettle the current run's output.
#[tokio::test]
async fn a_stale_runs_output_is_not_shown() {
    let app = app();
    let token = login_as(&app, "stan").await;
    let id = submit(&app, &token).await;
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    for (attempt, text) in [(2, "new\n"), (1, "old\n"), (2, "more\n")] {
        let r = progress(
            &app,
            &id,
            attempt,
            json!([{"event": "stdout", "data": text}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert!(
        commit(&app, &id, Verdict::Ok, "new\nmore\n")
            .await
            .status
            .is_success()
    );
    let all = events_of(&stream(&app, &token, &id, None).await);
    let output: Vec<&Value> = all
        .iter()
        .filter(|(name, ..)| name == "stdout")
        .map(|(.., data)| data)
        .collect();
    assert_eq!(
        output,
        [
            &json!({"data": "new\n", "attempt": 2}),
            &json!({"data": "more\n", "attempt": 2})
        ],
        "{all:?}"
    );
}

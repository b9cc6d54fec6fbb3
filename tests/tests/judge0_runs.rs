//! Judge0's `number_of_runs` on a stack of its own (so the sandbox counters on its
//! `/metrics` count this test's runs alone): each run a fresh sandbox, stopping at the
//! first run not Accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_tests::{Client, start_embedded};
use serde_json::{Value, json};

/// Run steps the stack has made so far.
async fn run_steps(c: &Client) -> u64 {
    let text = c
        .http
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("codebox_sandbox_steps_total{step=\"run\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

async fn submit(c: &Client, body: Value) -> Value {
    let (status, answer) = c
        .post("/judge0/submissions?wait=true", &body)
        .await
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

#[tokio::test]
async fn each_run_is_a_sandbox_of_its_own_until_one_fails() {
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    let before = run_steps(&c).await;
    let plain = submit(
        &c,
        json!({"source_code": "print(6 * 7)", "language_id": 71, "number_of_runs": 3}),
    )
    .await;
    assert_eq!(plain["status"]["id"], 3, "{plain}");
    assert_eq!(plain["stdout"], "42\n", "{plain}");
    assert!(plain["time"].as_str().is_some(), "{plain}");
    let after_plain = run_steps(&c).await;
    assert_eq!(after_plain - before, 3, "three runs");
    let judged = submit(
        &c,
        json!({"source_code": "print(6 * 7)", "language_id": 71, "number_of_runs": "4",
            "expected_output": "42"}),
    )
    .await;
    assert_eq!(judged["status"]["id"], 3, "{judged}");
    let after_judged = run_steps(&c).await;
    assert_eq!(after_judged - after_plain, 4, "four runs");
    // A failing run ends them: the first exits non-zero, no second one is made.
    let failing = submit(
        &c,
        json!({"source_code": "raise SystemExit(2)", "language_id": 71, "number_of_runs": 5}),
    )
    .await;
    assert_eq!(failing["status"]["id"], 11, "{failing}");
    assert_eq!(run_steps(&c).await - after_judged, 1, "one run");
}

//! Live events (`GET /task/{id}/events`): output streams while the program runs on the
//! embedded profile and across the compose profile's gateways (Redis carries it from the
//! gateway the worker reports to, to the one the client watches); a late client hears the
//! output from the start and a returning one the rest; and a client that goes away costs
//! the server nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use codebox_tests::procs::{Profile, metric_sum};
use codebox_tests::{Client, start_embedded, suite};
use serde_json::json;

async fn open_streams(c: &Client) -> f64 {
    metric_sum(&c.metrics().await.unwrap(), "codebox_event_streams")
}

/// Waits up to 2 s for the number of open streams to come to `n`.
async fn streams_come_to(c: &Client, n: f64) {
    let since = Instant::now();
    loop {
        let open = open_streams(c).await;
        if open == n {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "{open} streams open, not {n}: a stream whose client left still follows its task"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One test for the embedded stack of this process: the open-streams gauge is the
/// process's own, so nothing else may open a stream meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_streams_live_and_lets_go_of_a_client_that_left() {
    let running = start_embedded().await;
    suite::live_output_arrives_while_the_program_runs(running.addr, running.addr).await;
    suite::a_late_or_returning_client_hears_the_output_once(running.addr, running.addr).await;

    let c = Client::new_user(running.addr).await.unwrap();
    // The first stream's work ended with its `done`.
    streams_come_to(&c, 0.0).await;
    let id = c
        .submit(&json!({"language": "python", "code": "import time\ntime.sleep(10)"}))
        .await
        .unwrap();
    let mut stream = c.open_events(&id).await.unwrap();
    // A quiet program: nothing but the client's leaving can end the stream's work early.
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.name, "status");
    assert_eq!(open_streams(&c).await, 1.0);
    drop(stream);
    // The stream's work ends with its client, long before the task does.
    streams_come_to(&c, 0.0).await;
    let cancelled = c
        .http
        .delete(c.url(&format!("/task/{id}")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    running.stop().await;
}

/// Compose as processes: two gateways on one Redis, the worker reporting to the first,
/// the client submitting to the first and watching through the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_streams_through_a_gateway_that_did_not_take_the_task() {
    let profile = Profile::new();
    let _gateway = profile.gateway().await;
    let (_second, second) = profile.another_gateway().await;
    let (_worker, _) = profile.worker().await;
    suite::live_output_arrives_while_the_program_runs(profile.addr(), second).await;
    suite::a_late_or_returning_client_hears_the_output_once(profile.addr(), second).await;
}

//! A task's life through the API: wait, batches, live events, cancel, fair shares, metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::judging::C_SUM;
use super::{client, code};
use crate::containers_of;

pub async fn cancel_kills_a_running_task(addr: SocketAddr) {
    let c = client(addr).await;
    let id = c
        .submit(&json!({"language": "python", "code": "import time\nprint('up', flush=True)\ntime.sleep(20)", "limits": {"time_ms": 20000}}))
        .await
        .unwrap();
    // Wait until it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status(&id).await.unwrap();
        if s["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c.cancel(&id).await;
    assert_eq!(r.status(), 204);
    let cancelled_at = Instant::now();
    let s = c.status(&id).await.unwrap();
    assert_eq!(s["status"], "cancelled");
    // The contract: its sandbox is killed within 1 s (the worker's cancel watch polls
    // every 200 ms; the kill itself is one engine call).
    loop {
        if crate::running_containers_of(&id).unwrap() == 0 {
            break;
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "the program still ran {:?} after the cancel",
            cancelled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the container is gone soon after.
    loop {
        if containers_of(&id).unwrap() == 0 {
            break;
        }
        // The worker stops it within a second; removal by a busy engine takes longer.
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(5),
            "container still there {:?} after the cancel",
            cancelled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = c.wait(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(r["verdict"], "cancelled");
    let r = c.cancel(&id).await;
    assert_eq!(r.status(), 409);
}

pub async fn metrics_count_tasks_and_requests(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c.run(code("python", "print('m')")).await.unwrap();
    assert_eq!(r["verdict"], "ok");
    let text = c.metrics().await.unwrap();
    // The gateway's own metrics; the worker's are checked where the worker is a process
    // of its own (faults.rs) and, in the embedded profile, below.
    for needle in [
        "codebox_tasks_submitted_total{language=\"python\"}",
        "codebox_http_requests_total{route=\"/task\",method=\"POST\",status=\"202\"}",
        "codebox_http_request_duration_seconds_bucket{route=\"/status/{id}\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
}

/// The embedded profile serves the worker's metrics on the same `/metrics`.
pub async fn metrics_include_the_workers(addr: SocketAddr) {
    let c = client(addr).await;
    c.run(code("python", "print('w')")).await.unwrap();
    let text = c.metrics().await.unwrap();
    for needle in [
        "codebox_tasks_total{language=\"python\",verdict=\"ok\"}",
        "codebox_sandbox_seconds_bucket{language=\"python\"",
        "codebox_queue_wait_seconds_bucket",
        "codebox_tasks_in_flight",
        "codebox_sandbox_engine_info{engine=",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
}

/// One user's backlog does not hold another user's task (the queue is FIFO, but a user
/// runs at most `LIMIT_RUNNING_TASKS`, 3, at once; a start past it goes back behind the
/// queue): with twelve 3-second tasks of one user queued first, the other user's task
/// starts before most of them. First in, first out, it would start after all twelve.
/// Fair shares are the queue's and the store's, so it runs once per queue and store
/// (memory, RabbitMQ + PostgreSQL, SQS + DynamoDB), each time on a stack of its own:
/// its backlog would hold a shared stack's slots for twelve seconds, and tests that
/// need a free slot in time (the kernel quota's) share those.
/// The tasks last longer than reaching the other user's task takes on the slowest stack
/// (on moto, under the whole suite, each deferral costs a few hundred milliseconds of
/// SQS and DynamoDB calls, and SQS keeps no order among the copies that come back).
pub async fn a_users_backlog_does_not_hold_another_users_task(addr: SocketAddr) {
    const BACKLOG: usize = 12;
    let (first, second) = (client(addr).await, client(addr).await);
    let slow = json!({"language": "python", "code": "import time\ntime.sleep(3)\nprint('slow')"});
    let mut backlog = Vec::new();
    for _ in 0..BACKLOG {
        backlog.push(first.submit(&slow).await.unwrap());
    }
    let fair = second
        .submit(&json!({"language": "python", "code": "print('fair')"}))
        .await
        .unwrap();
    let r = second.wait(&fair, Duration::from_secs(120)).await.unwrap();
    assert_eq!(r["stdout"], "fair\n", "{r}");
    let started = |s: &Value| {
        s["started_at"]
            .as_str()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
    };
    let fair_started = started(&second.status(&fair).await.unwrap()).unwrap();
    let mut before = 0;
    for id in &backlog {
        if started(&first.status(id).await.unwrap()).is_some_and(|t| t < fair_started) {
            before += 1;
        }
    }
    assert!(
        before <= BACKLOG / 2,
        "{before} of the first user's {BACKLOG} tasks started before the second user's"
    );
    for id in &backlog {
        let r = first.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(r["stdout"], "slow\n", "{r}");
    }
}

/// `POST /task?wait=true`: the finished task in one request; past `wait_s`, the usual 202.
pub async fn wait_answers_with_the_finished_task(addr: SocketAddr) {
    let c = client(addr).await;
    let post = |query: &str, body: Value| {
        c.http
            .post(c.url(&format!("/task{query}")))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
    };
    let r = post("?wait=true", code("python", "print('hello')"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["result"]["verdict"], "ok");
    assert_eq!(body["result"]["stdout"], "hello\n");

    let started = Instant::now();
    let r = post(
        "?wait=true&wait_s=2",
        json!({"language": "python", "code": "import time\ntime.sleep(20)", "limits": {"time_ms": 20000}}),
    )
    .await
    .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 202);
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(8)).contains(&waited),
        "{waited:?}"
    );
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = c.cancel(&id).await;
    assert!(cancel.status().is_success(), "{}", cancel.status());
    for bad in [
        "?wait=true&wait_s=0",
        "?wait=true&wait_s=26",
        "?wait=maybe",
        "?waits=1",
    ] {
        let r = post(bad, code("python", "print(1)")).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

/// `POST /task/batch`: each task accepted or refused on its own, answers in order.
pub async fn a_batch_takes_each_task_on_its_own(addr: SocketAddr) {
    let c = client(addr).await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| {
            if i == 7 {
                code("brainfuck", "DISPLAY 'HI'.")
            } else {
                code("python", &format!("print({i})"))
            }
        })
        .collect();
    let batch = |body: Value| {
        c.http
            .post(c.url("/task/batch"))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
    };
    let r = batch(json!({"tasks": tasks})).await.unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    for (i, item) in items.iter().enumerate() {
        if i == 7 {
            assert_eq!(item["status"], 400, "{item}");
            assert!(
                item["detail"].as_str().unwrap().contains("brainfuck"),
                "{item}"
            );
            assert!(item.get("id").is_none());
        } else {
            assert_eq!(item["status"], "queued", "{item}");
        }
    }
    for i in [0usize, 19] {
        let id = items[i]["id"].as_str().unwrap();
        let r = c.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(r["stdout"], format!("{i}\n"), "{r}");
    }
    let many: Vec<Value> = (0..21).map(|_| code("python", "print(1)")).collect();
    for bad in [
        json!({"tasks": []}),
        json!({"tasks": many}),
        json!([code("python", "1")]),
    ] {
        assert_eq!(batch(bad).await.unwrap().status(), 400);
    }
}

/// A judged task's event stream, on every profile (AWS included, whose streams carry no
/// output): its status first, each test once, then `done` with the `GET /task/{id}` body,
/// the log's events numbered in order, and nothing after. A finished task's stream says the same at once;
/// another user's task is a 404.
pub async fn events_follow_a_task_to_its_end(addr: SocketAddr) {
    let c = client(addr).await;
    let tests = json!([
        {"stdin": "1 2\n", "expected_stdout": "3\n"},
        {"stdin": "2 2\n", "expected_stdout": "5\n"},
        {"stdin": "5 7\n", "expected_stdout": "12\n"},
    ]);
    let id = c
        .submit(&json!({"language": "c", "code": C_SUM, "tests": tests}))
        .await
        .unwrap();
    let check = |events: &[crate::SseEvent]| {
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"status"), "{names:?}");
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        // An event from the task's log has its number there as its id; one that is not
        // (a status read, `done`) keeps the last (a client's last event ID, as SSE has it).
        let ids: Vec<u64> = events
            .iter()
            .filter_map(|e| e.id.as_deref().map(|id| id.parse().unwrap()))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] <= w[1]),
            "events are numbered in order: {ids:?}"
        );
        let done = &events[events.len() - 1].data;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["result"]["verdict"], "wrong_answer", "{done}");
        assert_eq!(done["result"]["passed"], 2, "{done}");
        let mut shown: Vec<(u64, String)> = events
            .iter()
            .filter(|e| e.name == "test")
            .map(|e| {
                (
                    e.data["index"].as_u64().unwrap(),
                    e.data["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            vec![
                (0, "accepted".to_owned()),
                (1, "wrong_answer".to_owned()),
                (2, "accepted".to_owned())
            ]
        );
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e.name == "status")
            .map(|e| e.data["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
        done.clone()
    };
    let live = check(&c.events(&id).await.unwrap());
    let task = c.get_json(&format!("/task/{id}")).await.unwrap();
    assert_eq!(live, task, "done carries the GET /task/{{id}} body");
    let again = c.events(&id).await.unwrap();
    let names: Vec<&str> = again.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["status", "test", "test", "test", "done"]);
    check(&again);
    let other = client(addr).await;
    let refused = other.open_events(&id).await.err().unwrap().to_string();
    assert!(refused.contains("404"), "{refused}");
}

/// Output streams while the program runs: a line every 200 ms for a second reaches a
/// client watching through `watch` (on compose, a gateway other than the one the task
/// was submitted to) as it is printed, and the stream ends with `done`.
pub async fn live_output_arrives_while_the_program_runs(submit: SocketAddr, watch: SocketAddr) {
    let c = client(submit).await;
    let program =
        "import time\nfor i in range(5):\n    print('line', i, flush=True)\n    time.sleep(0.2)\n";
    let id = c.submit(&code("python", program)).await.unwrap();
    let events = c.at(watch).events(&id).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let done = &events[events.len() - 1];
    let expected = "line 0\nline 1\nline 2\nline 3\nline 4\n";
    assert_eq!(done.data["result"]["stdout"], expected, "{}", done.data);
    let chunks: Vec<&crate::SseEvent> = events.iter().filter(|e| e.name == "stdout").collect();
    let streamed: String = chunks
        .iter()
        .map(|e| e.data["data"].as_str().unwrap())
        .collect();
    assert_eq!(
        streamed, expected,
        "the chunks are the output, once: {names:?}"
    );
    assert!(
        chunks.len() >= 3,
        "a line at a time, not all at the end: {names:?}"
    );
    let first = chunks[0].at;
    let ahead = done.at.duration_since(first);
    assert!(
        ahead >= std::time::Duration::from_millis(500),
        "the first line arrived {ahead:?} before the end"
    );
}

/// The output of a stream's events, each chunk checked to come from the first run.
fn streamed_output(events: &[crate::SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.name == "stdout")
        .map(|e| {
            assert_eq!(e.data["attempt"], 1, "{}", e.data);
            e.data["data"].as_str().unwrap()
        })
        .collect()
}

/// A client who comes while the task runs hears its output from the start; one whose
/// stream broke comes back with `Last-Event-ID` and hears the rest, nothing twice.
pub async fn a_late_or_returning_client_hears_the_output_once(
    submit: SocketAddr,
    watch: SocketAddr,
) {
    let c = client(submit).await;
    let program =
        "import time\nfor i in range(6):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n";
    let expected = "line 0\nline 1\nline 2\nline 3\nline 4\nline 5\n";
    let id = c.submit(&code("python", program)).await.unwrap();
    let w = c.at(watch);
    let mut first = w.open_events(&id).await.unwrap();
    let (mut had, mut last) = (String::new(), None);
    while had.lines().count() < 2 {
        let event = first
            .next()
            .await
            .unwrap()
            .expect("the stream goes on while the task runs");
        assert_ne!(
            event.name, "done",
            "the program printed 2 lines before its end"
        );
        if event.name == "stdout" {
            had += event.data["data"].as_str().unwrap();
            last.clone_from(&event.id);
        }
    }
    assert!(last.is_some(), "output carries its number in the log");
    drop(first);
    let (late, resumed) = tokio::join!(w.events(&id), w.events_after(&id, last.as_deref()));
    let (late, resumed) = (late.unwrap(), resumed.unwrap());
    assert_eq!(
        streamed_output(&late),
        expected,
        "a late client hears the output from the start"
    );
    assert_eq!(
        had + &streamed_output(&resumed),
        expected,
        "a returning client hears the rest, once"
    );
    for events in [&late, &resumed] {
        assert_eq!(events.last().map(|e| e.name.as_str()), Some("done"));
    }
}

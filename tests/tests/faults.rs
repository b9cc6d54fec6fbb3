//! The compose profile as host processes (the gateway and worker binaries) against the
//! project's PostgreSQL, Redis and RabbitMQ, under faults: a worker killed mid-task, the
//! broker and the database restarted, a message that keeps failing, and 200 tasks from
//! 32 clients over two workers. Each ends with every task finished exactly once.
//! These restart shared services, so they run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use std::time::Duration;

use codebox_tests::Client;
use codebox_tests::procs::{
    Profile, assert_each_completed_with_its_marker, kill_mid_task_then_recover, metric_sum,
    sandbox_containers_after_reaping, stop_service, submit_marked, tasks_run, terminate,
    wait_completed, wait_for, worker_metrics,
};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn hello() -> Value {
    json!({"language": "python", "code": "print('hello')"})
}

async fn status_of(c: &Client, id: &str) -> String {
    c.status(id).await.unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_task_is_redelivered_and_completes() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let (first, _) = p.worker().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    kill_mid_task_then_recover(&p, first, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_loses_nothing_and_refuses_cleanly_meanwhile() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    // Running throughout: its consumer has to reconnect by itself.
    let (_worker, _) = p.worker().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    // Slow enough that some run and some wait in the queue when the broker stops.
    let slow = json!({"language": "python", "code": "import time\ntime.sleep(1)\nprint('ok')"});
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(c.submit(&slow).await.unwrap());
    }
    let broker = stop_service("rabbitmq");
    let r = c
        .http
        .post(c.url("/task"))
        .bearer_auth(&c.token)
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a submission during the outage is refused");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let health = codebox_tests::get(c.url("/health")).await.unwrap();
    assert_eq!(health.status(), 503);
    let listed = c.get_json("/task?limit=100").await.unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        8,
        "nothing half-made"
    );
    broker.restart();
    // The gateway's publisher reconnects too.
    ids.push(c.submit(&hello()).await.unwrap());
    for id in &ids {
        let r = c.wait(id, Duration::from_secs(90)).await.unwrap();
        assert_eq!(r["verdict"], "ok", "{id}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_503_meanwhile_then_recovers() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let (_worker, _) = p.worker().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c.submit(&hello()).await.unwrap();
    c.wait(&id, Duration::from_secs(60)).await.unwrap();
    let database = stop_service("postgres");
    // A finished task's status is what the gateway read before; its result is read again.
    let status = c.fetch(&format!("/status/{id}")).await.unwrap();
    assert_eq!(status.status(), 200, "a finished task's status is kept");
    let r = c.fetch(&format!("/result/{id}")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        !body.to_lowercase().contains("sql") && !body.contains("55432"),
        "{body}"
    );
    assert_eq!(
        codebox_tests::get(c.url("/health")).await.unwrap().status(),
        503
    );
    database.restart();
    wait_for(Duration::from_secs(30), || async {
        codebox_tests::get(c.url("/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let id = c.submit(&hello()).await.unwrap();
    let r = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["verdict"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_and_its_task_fails() {
    use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c.submit(&hello()).await.unwrap();
    // Consumers that crash on it: each takes the message and dies without settling.
    let env = |k: &str| p.env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let crashing = RabbitQueue::connect(RabbitConfig {
        url: env("AMQP_URL"),
        queue: env("TASK_QUEUE"),
        max_deliveries: 3,
        prefetch: 1,
        expires: Some(Duration::from_secs(600)),
    })
    .await
    .unwrap();
    // The last receive makes the broker dead-letter it.
    codebox_tests::procs::crash_on_next_message(&crashing, 3).await;
    drop(crashing);
    assert_eq!(status_of(&c, &id).await, "queued");
    // A worker finds it among the dead letters and ends the task.
    let (_worker, _) = p.worker().await;
    let r = c.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["verdict"], "internal_error");
}

/// Messages deferred just before the broker stops, whose delay ends while it is down, all
/// come back after its restart, each still counting one deferral:
/// the deferral queue dead-letters them to the task queue at least once (at most once,
/// they were dropped while the task queue recovered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_messages_outlive_a_broker_restart() {
    use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
    use codebox_core::ports::{QueueConsumer, TaskQueue};
    const N: usize = 20;
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let env = |k: &str| p.env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let queue = RabbitQueue::connect(RabbitConfig {
        url: env("AMQP_URL"),
        queue: format!("codebox-deferred-{}", uuid::Uuid::new_v4().simple()),
        max_deliveries: 3,
        prefetch: 4,
        expires: Some(Duration::from_secs(600)),
    })
    .await
    .unwrap();
    let mut sent = HashSet::new();
    for _ in 0..N {
        let m = queued_message();
        sent.insert(m.task_id);
        queue.publish(&m).await.unwrap();
    }
    for _ in 0..N {
        let d = queue
            .receive(Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        d.settle.defer(Duration::from_millis(500)).await.unwrap();
    }
    let broker = stop_service("rabbitmq");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();
    let mut back = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while back.len() < N && std::time::Instant::now() < deadline {
        match queue.receive(Duration::from_secs(2)).await {
            Ok(Some(d)) => {
                // A message the broker had handed to this consumer (into its prefetch
                // buffer) as it stopped counts that delivery; the deferral counts none.
                assert_eq!(d.deferrals, 1, "{d:?}");
                assert!(d.attempt <= 2, "{d:?}");
                back.insert(d.message.task_id);
                d.settle.ack().await.unwrap();
            }
            Ok(None) => {}
            // Reconnecting after the restart.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(
        back,
        sent,
        "{} of {N} deferred messages came back",
        back.len()
    );
}

/// A deferred message whose way back has nowhere to go for a moment (after a broker
/// restart its dead-lettering can start before the default exchange is back; here its
/// task queue is gone while it expires) is kept and tried again within seconds, not the
/// broker's default three minutes (`deploy/rabbitmq/advanced.config`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_message_with_nowhere_to_go_comes_back_within_seconds() {
    use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
    use codebox_core::ports::{QueueConsumer, TaskQueue};
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let env = |k: &str| p.env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let config = RabbitConfig {
        url: env("AMQP_URL"),
        queue: format!("codebox-nowhere-{}", uuid::Uuid::new_v4().simple()),
        max_deliveries: 3,
        prefetch: 1,
        expires: Some(Duration::from_secs(600)),
    };
    let queue = RabbitQueue::connect(config.clone()).await.unwrap();
    let m = queued_message();
    queue.publish(&m).await.unwrap();
    let d = queue
        .receive(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    d.settle.defer(Duration::from_secs(4)).await.unwrap();
    drop(queue);
    // The task queue is gone while the deferral runs out: the message has nowhere to go.
    let deleted = std::process::Command::new("rabbitmqctl")
        .args([
            "-q",
            "-n",
            "codebox@localhost",
            "delete_queue",
            &config.queue,
        ])
        .status()
        .unwrap();
    assert!(deleted.success());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let queue = RabbitQueue::connect(config).await.unwrap();
    let back = std::time::Instant::now();
    let d = queue
        .receive(Duration::from_secs(20))
        .await
        .unwrap()
        .expect("the deferred message within 20 s of its queue's return");
    assert_eq!(d.message.task_id, m.task_id);
    assert!(back.elapsed() < Duration::from_secs(20));
    d.settle.ack().await.unwrap();
}

/// A task's message as the API queues it (a python one-liner, a fresh id).
fn queued_message() -> codebox_core::domain::TaskMessage {
    use codebox_core::domain::{CodeSpec, TaskMessage, TaskSpec};
    TaskMessage {
        task_id: uuid::Uuid::new_v4(),
        spec: TaskSpec::Code(CodeSpec {
            language: "python".into(),
            code: "print(1)".into(),
            ..Default::default()
        }),
        enqueued_at: codebox_core::time::now(),
    }
}

async fn tasks_counted(port: u16) -> f64 {
    metric_sum(&worker_metrics(port).await, "codebox_tasks_total{")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_from_32_clients_on_two_workers_each_run_once() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let (_w1, port1) = p.worker().await;
    let (_w2, port2) = p.worker().await;
    let mut handles = Vec::new();
    for i in 0..32 {
        let addr = p.addr();
        let count = 200 / 32 + usize::from(i < 200 % 32);
        handles.push(tokio::spawn(async move {
            let c = Client::new_user(addr).await.unwrap();
            let mut ids = Vec::new();
            for _ in 0..count {
                ids.push(c.submit(&hello()).await.unwrap());
            }
            for id in &ids {
                let r = c.wait(id, Duration::from_secs(240)).await.unwrap();
                assert_eq!(r["stdout"], "hello\n", "{r}");
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    let mut total = 0;
    for h in handles {
        for id in h.await.unwrap() {
            total += 1;
            all.insert(id);
        }
    }
    assert_eq!((total, all.len()), (200, 200));
    let runs = tasks_counted(port1).await + tasks_counted(port2).await;
    assert_eq!(
        runs, 200.0,
        "each task ran exactly once across the two workers"
    );
    assert!(
        tasks_counted(port1).await > 0.0 && tasks_counted(port2).await > 0.0,
        "both workers took tasks"
    );
}

/// `docker stop`, compose and ECS send SIGTERM: the worker takes nothing new, finishes the
/// task it runs, stores its outcome, removes its sandbox and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_task_finishes_the_task_and_leaves_no_container() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let (mut worker, log) = p.logged_worker(&[("WORKER_CONCURRENCY", "1")]).await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c
        .submit(&json!({"language": "python", "code": "import time\ntime.sleep(2)\nprint('done')"}))
        .await
        .unwrap();
    let queued = c.submit(&hello()).await.unwrap();
    wait_for(Duration::from_secs(30), || async {
        c.status(&id).await.unwrap()["status"] == "running"
    })
    .await;
    terminate(&mut worker, Duration::from_secs(60));
    let r = c.wait(&id, Duration::from_secs(1)).await.unwrap();
    assert_eq!(r["verdict"], "ok", "finished before the worker exited: {r}");
    assert_eq!(r["stdout"], "done\n");
    assert_eq!(codebox_tests::containers_of(&id).unwrap(), 0);
    // The stopping worker did not take the queued task; the next worker runs it.
    assert_eq!(tasks_run(&log), 1);
    let (_next, _) = p.worker().await;
    let r = c.wait(&queued, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["stdout"], "hello\n");
}

/// A thousand tasks while the gateway is killed and restarted, each worker is stopped and
/// replaced, and the broker restarts: every task completes with its own output, each ran
/// exactly once (the run's lease keeps a redelivered message from running it again), and
/// no sandbox is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_survive_gateway_worker_and_broker_restarts() {
    let _serial = SERIAL.lock().await;
    const N: usize = 1000;
    let p = Profile::new();
    let mut gateway = p.gateway().await;
    let (mut w1, log1) = p.logged_worker(&[]).await;
    let (mut w2, log2) = p.logged_worker(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Client::new_user(p.addr()).await.unwrap());
    }
    let tasks = submit_marked(&clients, N).await;
    assert_eq!(tasks.len(), N);
    let within = Duration::from_secs(300);

    wait_completed(&clients, 50, within).await;
    gateway.0.kill().unwrap(); // SIGKILL: workers lose the API mid-flight
    gateway.0.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _gateway = p.gateway().await;

    wait_completed(&clients, 250, within).await;
    terminate(&mut w1, Duration::from_secs(60));
    let (mut w3, log3) = p.logged_worker(&[]).await;

    wait_completed(&clients, 450, within).await;
    terminate(&mut w2, Duration::from_secs(60));
    let (mut w4, log4) = p.logged_worker(&[]).await;

    wait_completed(&clients, 650, within).await;
    let broker = stop_service("rabbitmq");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();

    wait_completed(&clients, N, within).await;
    assert_each_completed_with_its_marker(&clients, &tasks).await;
    terminate(&mut w3, Duration::from_secs(60));
    terminate(&mut w4, Duration::from_secs(60));
    let runs: u64 = [&log1, &log2, &log3, &log4]
        .iter()
        .map(|l| tasks_run(l))
        .sum();
    // Delivery is at least once: a message in flight when the broker stops comes back
    // after its restart. A start takes a lease, so such a message waits for the run
    // under way instead of running its task again: only a dead worker's task runs twice,
    // and none died here. (The profile's database is its own: no other test's outbox
    // reaches this gateway's sweeper, which once queued 14 tasks of the store's
    // conformance suite here.)
    assert_eq!(
        runs,
        N as u64,
        "{runs} runs of {N} tasks; what the workers said of leases and hand-backs:\n{}",
        notable_lines(&[&log1, &log2, &log3, &log4])
    );
    assert_eq!(
        sandbox_containers_after_reaping().await,
        0,
        "no sandbox left"
    );
}

/// A worker given the wrong credential would hold every task forever: it stops at start
/// with one line naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_wrong_token_stops_at_start_with_one_line() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let stderr = worker_that_stops(&p, &[("WORKER_TOKEN", "not-the-worker-token")]).await;
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("codebox-worker: WORKER_TOKEN is not the worker credential"),
        "{stderr}"
    );
}

/// Every setting is read and checked before the worker connects to anything: a bad one
/// stops it with one line naming the variable, whichever part of the worker reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_bad_setting_stops_with_one_line_naming_it() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    for (name, value) in [
        ("WORKER_CONCURRENCY", "0"),
        ("MAX_DELIVERIES", "lots"),
        ("CANCEL_POLL_MS", "5"),
        ("LIVE_EVENTS", "maybe"),
        ("QUEUE", "kafka"),
        ("SQS_VISIBILITY_SECS", "1"),
        ("CODEBOX_SANDBOX_PIDS", "3"),
        ("CODEBOX_SANDBOX_ENGINE", "podman"),
        ("WORKER_API_WAIT_SECS", "0"),
    ] {
        let mut env = vec![(name, value)];
        if name == "SQS_VISIBILITY_SECS" {
            env.extend([
                ("QUEUE", "sqs"),
                ("TASK_QUEUE_URL", "http://127.0.0.1:1/queue/tasks"),
                ("TASK_DLQ_URL", "http://127.0.0.1:1/queue/dead"),
                ("BLOB_BUCKET", "blobs"),
            ]);
        }
        let stderr = worker_that_stops(&p, &env).await;
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}={value}: {stderr}");
        assert!(
            lines[0].starts_with("codebox-worker: ") && lines[0].contains(name),
            "{name}={value}: {stderr}"
        );
    }
}

/// On AWS the worker's API is an `https://` URL: a worker told to trust the front's CA
/// (`SSL_CERT_FILE`) runs a task through it to its end; one that does not trust it stops
/// at start, saying why, rather than holding every task forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reaches_its_api_over_https() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let _gateway = p.gateway().await;
    let front = codebox_tests::tls::TlsFront::start(p.addr()).await.unwrap();
    let ca = front.ca_file.to_string_lossy().into_owned();
    let (mut worker, log) = p
        .logged_worker(&[
            ("API_URL", front.url().as_str()),
            ("SSL_CERT_FILE", ca.as_str()),
        ])
        .await;
    let c = Client::new_user(p.addr()).await.unwrap();
    let id = c.submit(&hello()).await.unwrap();
    let r = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["stdout"], "hello\n", "{r}");
    terminate(&mut worker, Duration::from_secs(60));
    assert_eq!(tasks_run(&log), 1);

    let url = front.url();
    let stderr = worker_that_stops(
        &p,
        &[("API_URL", url.as_str()), ("WORKER_API_WAIT_SECS", "2")],
    )
    .await;
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("codebox-worker: the API at https://localhost:")
            && last.contains("did not answer within 2 s"),
        "{stderr}"
    );
}

/// Runs a worker of `p` with `env` on top (no `SSL_CERT_FILE`), which must stop by itself
/// within 30 s and fail; its stderr.
async fn worker_that_stops(p: &Profile, env: &[(&str, &str)]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(codebox_tests::procs::bin("codebox-worker"))
            .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(p.worker_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("SSL_CERT_FILE")
            .env("WORKER_METRICS_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .output(),
    )
    .await
    .expect("the worker stops by itself")
    .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// With `METRICS_ADDR` (the compose profile), `/metrics` is off the public API port and
/// served on its own listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_the_api_port_with_metrics_addr() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let port = codebox_tests::procs::free_port();
    let _gateway = p.spawn("gateway", &[("METRICS_ADDR", format!("127.0.0.1:{port}"))]);
    wait_for(Duration::from_secs(30), || async {
        codebox_tests::get(format!("http://{}/health", p.addr()))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let public = codebox_tests::get(format!("http://{}/metrics", p.addr()))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    // A request is counted as its response ends, which a client may see first: look
    // until the count is there (bounded).
    let mut text = String::new();
    for _ in 0..50 {
        text = match codebox_tests::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("codebox_http_requests_total{route=\"/health\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("codebox_http_requests_total{route=\"/health\""),
        "{text}"
    );
}

/// The limits' counts live in Redis: two gateways share them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_rate_is_shared_by_two_gateways() {
    let _serial = SERIAL.lock().await;
    codebox_tests::procs::auth_rate_is_shared_by_gateways(&Profile::new()).await;
}

/// The gateway drains on SIGTERM too: it stops accepting, finishes what is under way and
/// exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_gateway_cleanly() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let mut gateway = p.gateway().await;
    terminate(&mut gateway, Duration::from_secs(20));
    assert!(
        codebox_tests::get(format!("http://{}/health", p.addr()))
            .await
            .is_err()
    );
}

/// An outcome too big for one request goes through the blob store (a worker spilling
/// from 1 KiB here), and its blob is gone once stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_too_big_for_one_request_goes_through_the_blob_store() {
    let _serial = SERIAL.lock().await;
    let p = Profile::new();
    let id = codebox_tests::procs::big_outcome_goes_through_the_blob_store(&p).await;
    let dir = &p.env.iter().find(|(k, _)| k == "BLOB_DIR").unwrap().1;
    let left = std::path::Path::new(dir).join("results").join(&id);
    let files = std::fs::read_dir(&left).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "spilled outcome blobs left in {}", left.display());
}

/// The lines of the workers' logs that tell why a task could run twice.
fn notable_lines(logs: &[&std::path::Path]) -> String {
    let mut said = Vec::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        said.extend(
            text.lines()
                .filter(|l| {
                    [
                        "WARN",
                        "ERROR",
                        "handing",
                        "lease",
                        "another worker",
                        "skipping",
                    ]
                    .iter()
                    .any(|w| l.contains(w))
                })
                .take(200)
                .map(|l| format!("{}: {l}", log.display())),
        );
    }
    said.join("\n")
}

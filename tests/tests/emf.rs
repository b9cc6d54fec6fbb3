//! CloudWatch metrics in the cloud come from the processes' own output (the embedded
//! metric format, `METRICS_FORMAT=emf`, as the AWS stack sets it): the gateway's code is
//! the functions', and it writes one document per request; the worker one per task.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use codebox_tests::Client;
use codebox_tests::procs::{Profile, free_port, wait_for};
use serde_json::{Value, json};

fn documents(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|d| d.get("_aws").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_and_workers_write_cloudwatch_metrics() {
    let profile = Profile::new();
    let dir = std::env::temp_dir().join(format!("codebox-emf-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (gateway_out, worker_out) = (dir.join("gateway.out"), dir.join("worker.out"));
    let emf = ("METRICS_FORMAT", "emf".to_owned());
    // As the stack sets it: a namespace of its own per stack.
    let namespace = ("METRICS_NAMESPACE", "codebox/emf-test".to_owned());
    let _gateway = profile.spawn_to(
        "gateway",
        &[emf.clone(), namespace.clone()],
        Stdio::from(std::fs::File::create(&gateway_out).unwrap()),
    );
    wait_for(Duration::from_secs(30), || async {
        codebox_tests::get(format!("http://{}/health", profile.addr()))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let metrics = free_port();
    let _worker = profile.spawn_to(
        "codebox-worker",
        &[
            emf,
            namespace,
            ("WORKER_METRICS_ADDR", format!("127.0.0.1:{metrics}")),
        ],
        Stdio::from(std::fs::File::create(&worker_out).unwrap()),
    );
    let c = Client::new_user(profile.addr()).await.unwrap();
    let r = c
        .run(json!({"language": "python", "code": "print('hi')"}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");

    let requests = documents(&gateway_out);
    let submit = requests
        .iter()
        .find(|d| d["Route"] == "/task" && d["Requests"] == 1.0)
        .unwrap_or_else(|| panic!("no document for POST /task in {requests:?}"));
    assert_eq!(
        submit["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "codebox/emf-test"
    );
    assert_eq!(
        submit["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Route"]])
    );
    assert!(submit["Latency"].as_f64().unwrap() > 0.0, "{submit}");
    assert_eq!(submit["ServerErrors"], 0.0);

    // The worker writes its document once the task is committed.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks = documents(&worker_out);
        if !tasks.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let task = tasks
        .iter()
        .find(|d| d["Language"] == "python")
        .unwrap_or_else(|| panic!("no task document in {tasks:?}"));
    assert_eq!(task["Verdict"], "ok");
    assert_eq!(task["Tasks"], 1.0);
    assert_eq!(
        task["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "codebox/emf-test"
    );
    assert_eq!(
        task["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Language", "Verdict"]])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

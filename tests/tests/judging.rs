//! Judging compiles once: a C program with 20 tests takes one compile step and 20 run
//! steps, counted by the worker's metrics. Its own test binary and stack, so that no
//! other test's steps are counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_tests::procs::{metric_sum, worker_metrics};
use codebox_tests::{Client, start_embedded};
use serde_json::{Value, json};

const C_DOUBLE: &str = "#include <stdio.h>\nint main(void){int n;if(scanf(\"%d\",&n)!=1)return 1;printf(\"%d\\n\",2*n);}\n";

fn steps(metrics: &str, kind: &str) -> f64 {
    metric_sum(
        metrics,
        &format!("codebox_sandbox_steps_total{{step=\"{kind}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tests_take_one_compile_and_twenty_runs() {
    let running = start_embedded().await;
    let port = running.addr.port();
    let c = Client::new_user(running.addr).await.unwrap();
    let before = worker_metrics(port).await;
    let tests: Vec<Value> = (0..20)
        .map(|i| json!({"stdin": format!("{i}\n"), "expected_stdout": format!("{}\n", 2 * i)}))
        .collect();
    let r = c
        .run(json!({"language": "c", "code": C_DOUBLE, "tests": tests}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "accepted", "{r}");
    assert_eq!(r["passed"], 20);
    let after = worker_metrics(port).await;
    assert_eq!(steps(&after, "compile") - steps(&before, "compile"), 1.0);
    assert_eq!(steps(&after, "run") - steps(&before, "run"), 20.0);
    running.stop().await;
}

//! Warm single-use sandboxes on the embedded stack: containers wait ahead of need, each
//! serves one step and is removed, and the pool leaves nothing behind when the stack
//! stops. Its own test binary: it counts every sandbox container on the engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use codebox_tests::{Client, start_embedded};
use serde_json::json;

/// Every container the sandbox labels, whatever its role.
fn all_sandboxes() -> HashSet<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--no-trunc", "--filter", "label=codebox.role"])
        .output()
        .expect("the docker CLI");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sandbox containers of this test's stack: those of a test binary before it may still be
/// on their way out.
fn sandboxes() -> HashSet<String> {
    let foreign = FOREIGN.get().cloned().unwrap_or_default();
    all_sandboxes().difference(&foreign).cloned().collect()
}

static FOREIGN: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the number of sandbox containers holds still for 1.5 s; returns it.
async fn filled() -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (usize::MAX, Instant::now());
    loop {
        let n = sandboxes().len();
        if n != last {
            (last, since) = (n, Instant::now());
        } else if n > 0 && since.elapsed() > Duration::from_millis(1500) {
            return n;
        }
        assert!(Instant::now() < deadline, "the pool never settled ({n})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_sandboxes_serve_one_step_each_and_leave_with_the_stack() {
    let _ = FOREIGN.set(all_sandboxes());
    let running = start_embedded().await;
    // Both kept-warm sizes (the default run limit and the compile limit) fill up, to the
    // worker's concurrency each, and stay there.
    let full = filled().await;
    assert!(full >= 2, "{full}");
    let warm = sandboxes();

    let c = Client::new_user(running.addr).await.unwrap();
    let r = c
        .run(json!({"language": "c", "code": "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}"}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    // The compile and the run each took a warm container, and both are removed (off the
    // task's path, so a moment later).
    wait_for("the used containers to go", || {
        warm.difference(&sandboxes()).count() >= 2
    })
    .await;

    let metrics = codebox_tests::procs::worker_metrics(running.addr.port()).await;
    let warm_starts =
        codebox_tests::procs::metric_sum(&metrics, "codebox_sandbox_starts_total{pool=\"warm\"}");
    assert!(warm_starts >= 2.0, "steps started warm: {warm_starts}");

    // The pool refills to the same size, then empties when the stack stops.
    wait_for("the pool to refill", || sandboxes().len() >= full).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sandboxes().len(), full, "no more than the pool's size");
    running.stop().await;
    let left = sandboxes();
    assert!(
        left.is_empty(),
        "warm containers outlived the stack: {left:?}"
    );
}

//! Warm single-use sandboxes on the embedded stack: containers wait ahead of need, each
//! serves one step and is removed, and the pool leaves nothing behind when the stack
//! stops. Its own test binary: it counts every sandbox container on the engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use codebox_tests::{Client, DOCKER_ENGINE, RUNC_ENGINE, start_embedded_on};
use serde_json::json;

#[derive(Clone, Copy)]
enum Engine {
    Docker,
    Runc,
}

/// Every sandbox of the engine: containers the sandbox labels, whatever their role; on
/// runc, its containers and their bundles.
fn all_sandboxes(engine: Engine) -> HashSet<String> {
    use codebox_worker::sandbox::engine::runc as oci;
    let root = oci::runc_root().to_string_lossy().into_owned();
    let (program, args) = match engine {
        Engine::Docker => (
            "docker",
            vec!["ps", "-aq", "--no-trunc", "--filter", "label=codebox.role"],
        ),
        Engine::Runc => ("runc", vec!["--root", root.as_str(), "list", "-q"]),
    };
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("the engine's CLI");
    let mut all: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    if let (Engine::Runc, Ok(dir)) = (engine, std::fs::read_dir(oci::bundles(oci::Runtime::Runc))) {
        all.extend(
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    all
}

/// Sandboxes of this test's stack: those of a test binary before it may still be on their
/// way out.
fn sandboxes(engine: Engine, foreign: &HashSet<String>) -> HashSet<String> {
    all_sandboxes(engine).difference(foreign).cloned().collect()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the number of sandbox containers holds still for 1.5 s; returns it.
async fn filled(engine: Engine, foreign: &HashSet<String>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (usize::MAX, Instant::now());
    loop {
        let n = sandboxes(engine, foreign).len();
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
    warm_sandboxes(Engine::Docker).await;
}

/// The same on the runc engine: its containers and their bundles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_runc_sandboxes_serve_one_step_each_and_leave_with_the_stack() {
    warm_sandboxes(Engine::Runc).await;
}

async fn warm_sandboxes(engine: Engine) {
    let foreign = all_sandboxes(engine);
    let sandboxes = || sandboxes(engine, &foreign);
    let running = match engine {
        Engine::Docker => start_embedded_on(Some(DOCKER_ENGINE)).await,
        Engine::Runc => start_embedded_on(Some(RUNC_ENGINE)).await,
    };
    // Both kept-warm sizes (the default run limit and the compile limit) fill up, to the
    // worker's concurrency each, and stay there.
    let full = filled(engine, &foreign).await;
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

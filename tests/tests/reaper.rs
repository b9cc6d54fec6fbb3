//! The reaper removes what a dead worker left: a sandbox container created and never
//! started once it is a few seconds old, a running one only when it is older than any
//! live step can be. Its own test binary: it makes sandbox-labelled containers by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use codebox_worker::sandbox::{DockerSandbox, SandboxConfig};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_removes_a_dead_workers_leftovers_and_nothing_alive() {
    let config = SandboxConfig::default();
    let image = config.image.clone();
    let sandbox = DockerSandbox::connect(config).await.unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    // A worker that died between create and start leaves this.
    let never_started = docker(&[
        "create",
        "--label",
        "codebox.role=sandbox",
        "--name",
        &format!("codebox-reaper-created-{suffix}"),
        &image,
    ]);
    // A step under way looks like this (its worker alive).
    let running = docker(&[
        "run",
        "-d",
        "--label",
        "codebox.role=sandbox",
        "--name",
        &format!("codebox-reaper-running-{suffix}"),
        "--entrypoint",
        "sleep",
        &image,
        "120",
    ]);

    // Young: both kept.
    sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(exists(&never_started) && exists(&running));

    // Past the never-started bound: that one goes, the running one stays (it is far
    // younger than the 5 minutes a running sandbox may live).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let removed = sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(removed >= 1, "{removed}");
    assert!(
        !exists(&never_started),
        "the never-started container is still there"
    );
    assert!(exists(&running), "a running sandbox was reaped");

    docker(&["rm", "-f", &running]);
}

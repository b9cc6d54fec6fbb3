//! The baselines codebox is judged against, run in the same bench on the same machine:
//! python3 on the host (the floor), a bare `docker run --rm` of the same hello, and a
//! pipeline doing one `docker run --rm` per task.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{round, summary};

/// The runtime the docker-run baselines run on: gVisor's where the sandboxes run on it
/// (a second kernel is compared with a second kernel), else Docker's default (runc; crun
/// is compared with what a `docker run` costs as installed).
pub fn runtime() -> Option<String> {
    std::env::var("CODEBOX_SANDBOX_RUNTIME")
        .ok()
        .filter(|r| r == "runsc")
}

/// `docker run --rm --network none [--runtime runsc]`, see [`runtime`].
fn docker_run(image: &str) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--rm", "--network", "none"]
        .map(str::to_owned)
        .to_vec();
    if let Some(runtime) = runtime() {
        args.extend(["--runtime".to_owned(), runtime]);
    }
    args.extend([image, "python3", "-c", "print('hello')"].map(str::to_owned));
    args
}

/// The floor: the same python hello run directly on the host, no sandbox at all, as the
/// sandbox runs it (`python3 -B main.py`) with the interpreter the runner image has
/// (Debian's; not a shim a version manager may have put first on the `PATH`).
/// Each run is followed by `pause`.
pub fn on_the_host(n: usize, pause: Duration) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("codebox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("main.py"), "print('hello')\n")?;
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("python3");
    let mut ms = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let out = std::process::Command::new(python)
            .args(["-B", "main.py"])
            .current_dir(&dir)
            .output()
            .context("running python3 on the host")?;
        if !out.status.success() || out.stdout != b"hello\n" {
            bail!("python3 on the host failed");
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(pause);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(summary(ms))
}

pub fn bare_docker_run(image: &str, n: usize) -> anyhow::Result<Value> {
    let mut ms = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let out = std::process::Command::new("docker")
            .args(docker_run(image))
            .output()
            .context("running the docker CLI")?;
        if !out.status.success() || out.stdout != b"hello\n" {
            bail!(
                "docker run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(summary(ms))
}

/// How long one baseline `docker run` of a hello may take before the bench gives up.
const RUN_AT_MOST: std::time::Duration = std::time::Duration::from_secs(60);

/// The baseline pipeline: one `docker run --rm` per task, `clients` at a time.
pub async fn docker_run_pipeline(
    image: &str,
    tasks: usize,
    clients: usize,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let per = tasks.div_ceil(clients);
    let mut handles = Vec::new();
    for i in 0..clients {
        let count = per.min(tasks.saturating_sub(i * per));
        let image = image.to_owned();
        handles.push(tokio::spawn(async move {
            for _ in 0..count {
                // Bounded: Docker 20.10 under this load has been seen to leave its runs
                // hanging (their containers up, their CLIs waiting) until restarted.
                let run = tokio::process::Command::new("docker")
                    .args(docker_run(&image))
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(RUN_AT_MOST, run)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "a docker run hung for {} s: the Docker daemon is stuck; restart it",
                            RUN_AT_MOST.as_secs()
                        )
                    })?
                    .context("running the docker CLI")?;
                if !out.status.success() || out.stdout != b"hello\n" {
                    bail!(
                        "docker run failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "tasks": tasks, "clients": clients, "seconds": round(secs),
        "tasks_per_second": round(tasks as f64 / secs),
    }))
}

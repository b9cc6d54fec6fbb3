//! One sandbox step: a fresh container that gets its files as a tar on stdin, runs one
//! command under limits, and is removed whatever happens.
//!
//! Why stdin: the root filesystem is read-only and `/tmp` is a tmpfs that exists only once
//! the container runs, so Docker's archive upload cannot place files before start. The
//! container's first act is `tar -x` of its stdin into `/tmp/box`; host code never opens,
//! writes or follows a path inside the sandbox, and outputs come from the attached streams.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, InspectContainerOptions, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use codebox_core::Error;
use codebox_core::domain::TaskId;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::SandboxConfig;
use super::commands::{BOX_DIR, STDIN_FILE};

/// Label on every sandbox container, for finding leftovers.
pub const ROLE_LABEL: &str = "codebox.role";
pub const TASK_LABEL: &str = "codebox.task_id";

/// A file to place in `/tmp/box` before the command runs.
pub struct InFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// How much of one output stream is kept, and whether going over stops the step.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    pub bytes: usize,
    pub kill: bool,
}

pub struct Step<'a> {
    pub task_id: TaskId,
    /// Shell text run after the files are in place, with `"$@"` = `argv`.
    pub script: &'a str,
    pub argv: Vec<String>,
    pub files: Vec<InFile>,
    pub wall: Duration,
    pub memory_mb: u32,
    pub stdout: Cap,
    pub stderr: Cap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The command ended by itself (with any exit code or signal).
    Exited,
    /// Our wall-clock timer fired.
    TimeLimit,
    /// A stream went over its cap.
    OutputLimit,
    Cancelled,
}

#[derive(Debug)]
pub struct StepOutcome {
    pub reason: StopReason,
    /// The container's exit code when it exited by itself: 128 + n for signal n.
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
    /// From the start of the container to the end of the command.
    pub wall: Duration,
}

/// Removes the container when dropped, unless `remove` ran: no path leaves one behind,
/// not even a cancelled future.
struct Guard {
    docker: Docker,
    id: Option<String>,
}

impl Guard {
    async fn remove(mut self) {
        if let Some(id) = self.id.take() {
            remove(&self.docker, &id).await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let docker = self.docker.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { remove(&docker, &id).await });
            }
        }
    }
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        tracing::warn!(container = id, error = %e, "removing a sandbox container failed");
    }
}

fn tar_of(files: &[InFile]) -> Result<Vec<u8>, Error> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.bytes.len() as u64);
        header.set_mode(f.mode);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &f.name, f.bytes.as_slice())
            .map_err(|e| Error::Backend(anyhow::anyhow!("building the input archive: {e}")))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::Backend(anyhow::anyhow!("building the input archive: {e}")))
}

fn engine(e: bollard::errors::Error) -> Error {
    Error::Unavailable(format!("container engine: {e}"))
}

fn container_config(config: &SandboxConfig, step: &Step<'_>) -> ContainerCreateBody {
    let script = format!(
        "mkdir -p {BOX_DIR} && cd {BOX_DIR} && tar -xf - && {}",
        step.script
    );
    let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned()];
    cmd.extend(step.argv.iter().cloned());
    let memory = i64::from(step.memory_mb) * 1024 * 1024;
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(value),
        hard: Some(value),
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        cmd: Some(cmd),
        // An explicit, minimal environment: nothing of the worker's reaches the sandbox.
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "HOME=/tmp".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "PYTHONUNBUFFERED=1".to_owned(),
        ]),
        user: Some("65534:65534".to_owned()),
        working_dir: Some("/tmp".to_owned()),
        labels: Some(HashMap::from([
            (ROLE_LABEL.to_owned(), "sandbox".to_owned()),
            (TASK_LABEL.to_owned(), step.task_id.to_string()),
        ])),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,exec,nosuid,nodev,size={}m,mode=1777", config.tmpfs_mb),
            )])),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            privileged: Some(false),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some((config.cpus * 1e9) as i64),
            pids_limit: Some(config.pids),
            ulimits: Some(vec![
                ulimit("fsize", config.file_size_mb * 1024 * 1024),
                ulimit("nofile", 256),
                ulimit("core", 0),
            ]),
            // Output is read from the attached streams; nothing goes to disk logs.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_owned()),
                config: None,
            }),
            runtime: config.runtime.clone(),
            init: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs the step to its end, a limit, or a cancel; the container is gone when this returns.
pub async fn run(
    docker: &Docker,
    config: &SandboxConfig,
    step: Step<'_>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    let created = docker
        .create_container(None, container_config(config, &step))
        .await
        .map_err(engine)?;
    let guard = Guard {
        docker: docker.clone(),
        id: Some(created.id.clone()),
    };
    let outcome = drive(docker, &created.id, step, cancel).await;
    guard.remove().await;
    outcome
}

async fn drive(
    docker: &Docker,
    id: &str,
    step: Step<'_>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    let attach = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let attached = docker
        .attach_container(id, Some(attach))
        .await
        .map_err(engine)?;
    let mut output = attached.output;
    let mut input = attached.input;
    let tar = tar_of(&step.files)?;
    docker.start_container(id, None).await.map_err(engine)?;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        // A program that exits early closes its stdin: a failed write is no error.
        let _ = input.write_all(&tar).await;
        let _ = input.shutdown().await;
    });

    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut truncated = false;
    let deadline = tokio::time::sleep(step.wall);
    tokio::pin!(deadline);
    let reason = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break StopReason::Cancelled,
            _ = &mut deadline => break StopReason::TimeLimit,
            item = output.next() => match item {
                None => break StopReason::Exited,
                Some(Err(e)) => {
                    writer.abort();
                    return Err(engine(e));
                }
                Some(Ok(LogOutput::StdOut { message })) => {
                    if keep(&mut stdout, &message, step.stdout) {
                        truncated = true;
                        if step.stdout.kill {
                            break StopReason::OutputLimit;
                        }
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    if keep(&mut stderr, &message, step.stderr) {
                        truncated = true;
                        if step.stderr.kill {
                            break StopReason::OutputLimit;
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    };
    let wall = started.elapsed();
    writer.abort();
    let (exit_code, oom_killed) = match reason {
        StopReason::Exited => exit_status(docker, id).await?,
        _ => (None, false),
    };
    Ok(StepOutcome {
        reason,
        exit_code,
        oom_killed,
        stdout,
        stderr,
        truncated,
        wall,
    })
}

/// Appends what fits under the cap; true when something did not fit.
fn keep(buf: &mut Vec<u8>, chunk: &[u8], cap: Cap) -> bool {
    let room = cap.bytes.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

async fn exit_status(docker: &Docker, id: &str) -> Result<(Option<i64>, bool), Error> {
    let wait = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let code = match docker.wait_container(id, Some(wait)).next().await {
        Some(Ok(r)) => Some(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
        Some(Err(e)) => return Err(engine(e)),
        None => None,
    };
    let state = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(engine)?
        .state;
    let mut oom = state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false);
    let code = code.or_else(|| state.and_then(|s| s.exit_code));
    // Killed by SIGKILL that we did not send: the engine may record the cgroup's OOM
    // event after the exit (seen on cgroup v1), so look again for a moment.
    if code == Some(128 + 9) && !oom {
        for _ in 0..6 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let state = docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
                .map_err(engine)?
                .state;
            oom = state.and_then(|s| s.oom_killed).unwrap_or(false);
            if oom {
                break;
            }
        }
    }
    Ok((code, oom))
}

pub fn stdin_file(bytes: &[u8]) -> InFile {
    InFile {
        name: STDIN_FILE.to_owned(),
        bytes: bytes.to_vec(),
        mode: 0o644,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Every protection of the sandbox container, pinned: removing any one of them from
    /// `container_config` turns this red (the end-to-end probes in `tests/` check that the
    /// engine really applies them).
    #[test]
    fn the_container_is_locked_down() {
        let config = SandboxConfig {
            runtime: Some("runsc".into()),
            ..SandboxConfig::default()
        };
        let step = Step {
            task_id: uuid::Uuid::new_v4(),
            script: "true",
            argv: vec![],
            files: vec![],
            wall: Duration::from_secs(1),
            memory_mb: 128,
            stdout: Cap {
                bytes: 1,
                kill: true,
            },
            stderr: Cap {
                bytes: 1,
                kill: true,
            },
        };
        let c = container_config(&config, &step);
        assert_eq!(c.user.as_deref(), Some("65534:65534"), "not root");
        assert_eq!(c.network_disabled, Some(true));
        let env = c.env.unwrap();
        assert!(env.iter().all(|e| {
            ["PATH=", "HOME=", "TMPDIR=", "LANG=", "PYTHONUNBUFFERED="]
                .iter()
                .any(|p| e.starts_with(p))
        }));
        let h = c.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(h.cap_add.is_none());
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(h.memory, Some(128 * 1024 * 1024));
        assert_eq!(h.memory_swap, h.memory, "no swap beyond the memory limit");
        assert_eq!(h.nano_cpus, Some(1_000_000_000));
        assert_eq!(h.pids_limit, Some(64));
        let tmpfs = h.tmpfs.unwrap();
        assert_eq!(tmpfs.len(), 1);
        let tmp = &tmpfs["/tmp"];
        assert!(tmp.contains("nosuid") && tmp.contains("nodev") && tmp.contains("size=64m"));
        let limits: HashMap<String, i64> = h
            .ulimits
            .unwrap()
            .into_iter()
            .map(|u| {
                assert_eq!(u.soft, u.hard);
                (u.name.unwrap(), u.hard.unwrap())
            })
            .collect();
        assert_eq!(limits["fsize"], 16 * 1024 * 1024);
        assert_eq!(limits["nofile"], 256);
        assert_eq!(limits["core"], 0);
        assert!(
            h.binds.is_none() && h.mounts.is_none(),
            "no host path inside"
        );
        assert!(h.devices.is_none() && h.device_requests.is_none());
        assert_eq!(h.log_config.unwrap().typ.as_deref(), Some("none"));
        assert_eq!(h.runtime.as_deref(), Some("runsc"));
        assert!(h.pid_mode.is_none() && h.ipc_mode.is_none() && h.userns_mode.is_none());
    }
}

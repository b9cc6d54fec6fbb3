//! The Docker engine: each sandbox a container made through the Docker API (bollard),
//! attached, started with the agent as its first process, killed and auto-removed by the
//! engine. Another runtime registered with the engine (gVisor's runsc) runs it when the
//! configuration names one.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, EventMessage, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, EventsOptionsBuilder, InspectContainerOptions,
    KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use codebox_agent::AGENT_PATH;
use codebox_core::Error;
use codebox_core::domain::TaskId;
use futures::StreamExt;
use tokio_util::task::TaskTracker;

use super::runc::{AGENT_TASKS, Daemon, GVISOR_HOST_PIDS, StoredImage};
use super::{Container, Engine, FromAgent, NEVER_STARTED_LEFTOVER, Prepared, RUNNING_LEFTOVER};
use crate::sandbox::SandboxConfig;
use crate::sandbox::identity::Identity;

/// Label on every sandbox container, for finding leftovers.
pub const ROLE_LABEL: &str = "codebox.role";
/// Label with the memory limit a container was made with (its pool class).
pub const MEMORY_LABEL: &str = "codebox.memory_mb";
/// A container running a task's step is renamed `codebox-<task id>-<id>`.
pub const NAME_PREFIX: &str = "codebox-";

/// The Docker engine, and what its sandboxes are made with.
pub struct DockerEngine {
    docker: Docker,
    config: SandboxConfig,
    /// Disposals begun by a drop; the worker's shutdown waits for them.
    disposals: TaskTracker,
}

impl DockerEngine {
    /// Connects to the local engine (`DOCKER_HOST` or /var/run/docker.sock) and agrees on
    /// an API version.
    pub async fn connect(config: &SandboxConfig, disposals: TaskTracker) -> anyhow::Result<Self> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| {
                anyhow::anyhow!(
                    "the Docker engine is not reachable ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
                )
            })?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            anyhow::anyhow!(
                "the Docker engine is not reachable at /var/run/docker.sock ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
            )
        })?;
        Ok(Self {
            docker,
            config: config.clone(),
            disposals,
        })
    }

    /// How the daemon makes its containers, which an OCI engine beside it matches.
    pub async fn daemon(&self) -> anyhow::Result<Daemon> {
        let info = self.docker.info().await?;
        Ok(Daemon {
            default_runtime: info.default_runtime.unwrap_or_else(|| "runc".to_owned()),
            security_options: info.security_options.unwrap_or_default(),
            runtimes: {
                let mut names: Vec<String> =
                    info.runtimes.unwrap_or_default().into_keys().collect();
                names.sort();
                names
            },
        })
    }

    /// Refuses, at start, a runtime (`CODEBOX_SANDBOX_RUNTIME`) this daemon does not
    /// have; `None` is its default runtime.
    pub async fn runs(&self, runtime: Option<&str>) -> anyhow::Result<()> {
        match runtime {
            Some(runtime) => self.daemon().await?.has_runtime(runtime),
            None => Ok(()),
        }
    }

    /// Where `image` lies in the daemon's store, for an OCI engine to mount.
    pub async fn stored_image(&self, image: &str) -> anyhow::Result<StoredImage> {
        let found = self.docker.inspect_image(image).await.map_err(|_| {
            anyhow::anyhow!(
                "the runner image {image} is missing; build it with `make runner-image`"
            )
        })?;
        let driver = found
            .graph_driver
            .ok_or_else(|| anyhow::anyhow!("the engine does not say where the runner image is"))?;
        let mut layers: Vec<String> = driver.data.get("UpperDir").cloned().into_iter().collect();
        if let Some(lower) = driver.data.get("LowerDir") {
            layers.extend(lower.split(':').map(str::to_owned));
        }
        Ok(StoredImage {
            id: found.id.unwrap_or_default(),
            driver: driver.name,
            layers,
        })
    }

    /// See [`Engine::reap`]. A worker's containers end by themselves when it dies (their
    /// agent sees its connection close, the engine removes them), except one created but
    /// not yet started at that moment; a running one that old is stuck.
    async fn reap_containers(&self, age: Duration) -> anyhow::Result<usize> {
        use bollard::query_parameters::ListContainersOptionsBuilder;
        let filters = HashMap::from([("label", vec![format!("{ROLE_LABEL}=sandbox")])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        let now = chrono::Utc::now().timestamp();
        // Created and never started: its worker died between the two calls, which take
        // milliseconds; no need to wait the full age.
        let idle_cutoff = now - age.min(NEVER_STARTED_LEFTOVER).as_secs() as i64;
        let running_cutoff = now - age.max(RUNNING_LEFTOVER).as_secs() as i64;
        let mut removed = 0;
        for c in list {
            let (Some(id), Some(created)) = (c.id, c.created) else {
                continue;
            };
            use bollard::models::ContainerSummaryStateEnum as State;
            // The engine's own removal failed (Docker 20.10 under load: "unable to
            // remove filesystem … directory not empty"): the container is dead, no process
            // left, and nothing removes it but a direct removal, which is safe now that
            // the engine's has ended.
            if matches!(c.state, Some(State::DEAD | State::REMOVING))
                && created < idle_cutoff
                && self.removal_failed(&id).await
            {
                remove(&self.docker, &id).await;
                removed += 1;
                continue;
            }
            let stale = match c.state {
                // Being removed by the engine (auto-remove after its run, perhaps another
                // worker's on the same engine): touching it races that removal, which can
                // leave a phantom "Removal In Progress" behind.
                Some(State::REMOVING) => false,
                Some(State::RUNNING | State::PAUSED | State::RESTARTING) => {
                    created < running_cutoff
                }
                // Never started: its worker died between create and start.
                Some(State::CREATED) => created < idle_cutoff,
                // Exited but not removed: auto-remove follows an exit at once, so only one
                // left that long is stuck (a warm container may be a minute old when it
                // serves its step and exits).
                _ => created < running_cutoff,
            };
            if stale {
                // Only a never-started one is removed directly; the engine removes the rest
                // itself once they have run (auto-remove), and must not be raced.
                let started = !matches!(
                    c.state,
                    Some(bollard::models::ContainerSummaryStateEnum::CREATED)
                );
                dispose(&self.docker, &id, started).await;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed stale sandbox containers of a worker that died"
            );
        }
        Ok(removed)
    }

    /// Whether the engine tried to remove this container and gave up: it is dead with the
    /// removal's error recorded, and no removal is under way any more.
    async fn removal_failed(&self, id: &str) -> bool {
        let Ok(c) = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        else {
            return false;
        };
        c.state.is_some_and(|s| {
            s.dead == Some(true)
                && s.running != Some(true)
                && s.error
                    .as_deref()
                    .is_some_and(|e| e.contains("unable to remove"))
        })
    }
}

#[async_trait]
impl Engine for DockerEngine {
    fn name(&self) -> &'static str {
        "docker"
    }

    /// Creates, attaches and starts a sandbox container.
    async fn prepare(&self, memory_mb: u32) -> Result<Prepared, Error> {
        let docker = &self.docker;
        let timer = crate::stages::Timer::start("create");
        let identity = self.config.identities.take()?;
        let made = unix_now().as_secs() as i64;
        let created = docker
            .create_container(
                None,
                container_config(&self.config, memory_mb, identity.uid()),
            )
            .await
            .map_err(engine)?;
        let mut container = DockerContainer {
            docker: docker.clone(),
            id: created.id.clone(),
            made,
            live: true,
            started: false,
            identity: Some(identity),
            disposals: self.disposals.clone(),
        };
        let attach = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let attached = docker
            .attach_container(&created.id, Some(attach))
            .await
            .map_err(engine)?;
        // From here on the engine may be running it: it is killed, never removed under the
        // engine's own auto-remove.
        container.started = true;
        docker
            .start_container(&created.id, None)
            .await
            .map_err(engine)?;
        let output = attached.output.filter_map(|item| async move {
            match item {
                Ok(LogOutput::StdOut { message }) => Some(Ok(FromAgent::Channel(message.into()))),
                Ok(LogOutput::StdErr { message }) => Some(Ok(FromAgent::Stderr(message.into()))),
                Ok(_) => None,
                Err(e) => Some(Err(engine(e))),
            }
        });
        let nproc = self
            .config
            .gvisor()
            .then(|| (self.config.pids + AGENT_TASKS).max(0) as u64);
        timer.done();
        Ok(Prepared::new(
            Box::new(container),
            Box::pin(output),
            attached.input,
            nproc,
        ))
    }

    /// Readiness: the engine answers and the runner image is there, with an agent that
    /// speaks this worker's protocol.
    async fn ping(&self) -> anyhow::Result<()> {
        self.docker.ping().await.map_err(|e| {
            anyhow::anyhow!(
                "the Docker engine does not answer ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
            )
        })?;
        let image = self
            .docker
            .inspect_image(&self.config.image)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the runner image {} is missing; build it with `make runner-image`",
                    self.config.image
                )
            })?;
        let protocol = image
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(codebox_agent::PROTOCOL_LABEL).cloned());
        if protocol.as_deref() != Some(codebox_agent::PROTOCOL) {
            anyhow::bail!(
                "the runner image {} has no sandbox agent of protocol {} (it has {}); rebuild it with `make runner-image`",
                self.config.image,
                codebox_agent::PROTOCOL,
                protocol.as_deref().unwrap_or("none")
            );
        }
        Ok(())
    }

    async fn reap(&self, age: Duration) -> anyhow::Result<usize> {
        self.reap_containers(age).await
    }
}

/// No new privileges, and the sandboxes' seccomp policy (the runc engine's too) as the
/// container's profile.
fn security_options(config: &SandboxConfig) -> Vec<String> {
    let mut options = vec!["no-new-privileges".to_owned()];
    if let Some(policy) = &config.seccomp {
        options.push(format!("seccomp={policy}"));
    }
    options
}

fn container_config(config: &SandboxConfig, memory_mb: u32, uid: u32) -> ContainerCreateBody {
    let memory = i64::from(memory_mb) * 1024 * 1024;
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(value),
        hard: Some(value),
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        // The agent is the container's first process: no shell, no init of Docker's.
        entrypoint: Some(vec![AGENT_PATH.to_owned()]),
        cmd: Some(vec![]),
        // An explicit, minimal environment: nothing of the worker's reaches the sandbox.
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "HOME=/tmp".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "PYTHONUNBUFFERED=1".to_owned(),
        ]),
        user: Some(format!("{uid}:{uid}")),
        working_dir: Some("/tmp".to_owned()),
        labels: Some(HashMap::from([
            (ROLE_LABEL.to_owned(), "sandbox".to_owned()),
            (MEMORY_LABEL.to_owned(), memory_mb.to_string()),
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
            security_opt: Some(security_options(config)),
            privileged: Some(false),
            oom_score_adj: Some(crate::sandbox::OOM_SCORE_ADJ),
            masked_paths: Some(crate::sandbox::proc_paths::masked()),
            readonly_paths: Some(crate::sandbox::proc_paths::readonly()),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some((config.cpus * 1e9) as i64),
            pids_limit: Some(if config.gvisor() {
                GVISOR_HOST_PIDS.max(config.pids)
            } else {
                config.pids
            }),
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
            // The agent exits when its worker's connection closes (stdin ends), and the
            // engine then removes the container: none outlives a worker, even one killed.
            auto_remove: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container of this engine; see [`Container`].
struct DockerContainer {
    docker: Docker,
    id: String,
    /// When it was made (Unix seconds): where the engine's events of it begin.
    made: i64,
    /// Cleared once disposed of.
    live: bool,
    started: bool,
    /// Its uid, given back once it is gone.
    identity: Option<Identity>,
    disposals: TaskTracker,
}

#[async_trait]
impl Container for DockerContainer {
    fn id(&self) -> &str {
        &self.id
    }

    /// The name tells which task a sandbox serves (`docker ps`, the tests); a rename that
    /// fails costs nothing but that.
    fn serves(&self, task: TaskId) -> tokio::task::JoinHandle<()> {
        let (docker, id) = (self.docker.clone(), self.id.clone());
        let name = format!("{NAME_PREFIX}{task}-{}", &id[..12.min(id.len())]);
        tokio::spawn(async move {
            let options = RenameContainerOptionsBuilder::default().name(&name).build();
            let _ = docker.rename_container(&id, options).await;
        })
    }

    async fn saw_oom(&self, within: Duration) -> Result<Option<bool>, Error> {
        engine_saw_oom(&self.docker, &self.id, self.made, within).await
    }

    /// The container's cgroup where Docker puts it: `docker/<id>` with the cgroupfs
    /// driver, `system.slice/docker-<id>.scope` with systemd's (on gVisor the Sentry's).
    fn account(&self) -> Option<crate::sandbox::account::Account> {
        use crate::sandbox::account::Account;
        Account::open(&format!("/docker/{}", self.id))
            .or_else(|| Account::open(&format!("/system.slice/docker-{}.scope", self.id)))
    }

    async fn dispose(mut self: Box<Self>) {
        self.live = false;
        let gone = dispose(&self.docker, &self.id, self.started).await;
        keep_unless_gone(self.identity.take(), gone);
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        self.live = false;
        let (docker, id, started) = (self.docker.clone(), self.id.clone(), self.started);
        let identity = self.identity.take();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(self.disposals.track_future(async move {
                let gone = dispose(&docker, &id, started).await;
                keep_unless_gone(identity, gone);
            }));
        }
    }
}

/// A container's uid goes back once the container is gone; one the engine did not
/// confirm gone may still run as it, so it keeps the uid for good.
fn keep_unless_gone(identity: Option<Identity>, gone: bool) {
    if let Some(identity) = identity
        && !gone
    {
        std::mem::forget(identity);
    }
}

/// How long the engine gets to remove a killed container before the worker removes it.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

/// Ends a sandbox container and waits until it is gone (bounded). A started one is killed
/// and the engine removes it: it was created with auto-remove, and removing it as well
/// races the engine's own removal, which Docker 20.10 can leave as a phantom "Removal In
/// Progress". One never started is removed directly.
/// Whether the container is known to be gone (or dead, its removal left to the engine).
async fn dispose(docker: &Docker, id: &str, started: bool) -> bool {
    // A start cut short (the worker stopping mid-call) may have started it all the same:
    // ask the engine rather than trust the flag before removing it directly.
    let started = started
        || docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.status)
            .is_some_and(|s| s != bollard::models::ContainerStateStatusEnum::CREATED);
    if started {
        let kill = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        // Already exited (its agent saw stdin end) or gone: nothing to kill.
        let _ = docker.kill_container(id, Some(kill)).await;
        let wait = WaitContainerOptionsBuilder::default()
            .condition("removed")
            .build();
        let mut waiting = docker.wait_container(id, Some(wait));
        match tokio::time::timeout(REMOVAL_WAIT, waiting.next()).await {
            // Removed (with any exit status), or already gone.
            Ok(Some(Ok(_)))
            | Ok(None)
            | Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })))
            | Ok(Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }))) => return true,
            // The engine is removing it, or will: removing it as well is the race above.
            Ok(Some(Err(e))) => {
                tracing::debug!(container = id, error = %e, "waiting for a sandbox's removal");
                return false;
            }
            // Left to the engine, which removes it once it can: removing it here as well
            // is the race that leaves a phantom. The reaper looks again after 5 minutes.
            Err(_) => {
                tracing::warn!(
                    container = id,
                    "the engine did not remove a killed sandbox within 10 s; leaving it to the engine"
                );
                return false;
            }
        }
    }
    remove(docker, id).await
}

/// Whether it is gone: removed now, or already (auto-remove).
async fn remove(docker: &Docker, id: &str) -> bool {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => true,
        // Being removed by the engine.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => false,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "removing a sandbox container failed");
            false
        }
    }
}

fn engine(e: bollard::errors::Error) -> Error {
    Error::Unavailable(format!("container engine: {e}"))
}

/// Whether the memory limit killed in the container, from the engine's events of it,
/// which outlive the container (it is auto-removed once its agent ends, often before an
/// inspect could read its state). One request streams them, from a minute before the
/// container was made (the worker's and the engine's clocks may differ), for at most
/// `within`: an `oom` event or a death by SIGKILL answers at once; after any other death
/// it still waits a moment for an `oom` event the engine records late (seen on cgroup
/// v1). `None` when the container has neither died nor been seen out of memory by then.
async fn engine_saw_oom(
    docker: &Docker,
    id: &str,
    made: i64,
    within: Duration,
) -> Result<Option<bool>, Error> {
    /// How long an `oom` event may follow the death it caused.
    const LATE_OOM: Duration = Duration::from_millis(300);
    let filters = HashMap::from([
        ("type", vec!["container".to_owned()]),
        ("container", vec![id.to_owned()]),
        ("event", vec!["oom".to_owned(), "die".to_owned()]),
    ]);
    let options = EventsOptionsBuilder::default()
        .since(&(made - 60).to_string())
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(options));
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let until = match oom_of(&seen) {
            Some(true) => return Ok(Some(true)),
            Some(false) => deadline.min(tokio::time::Instant::now() + LATE_OOM),
            None => deadline,
        };
        match tokio::time::timeout_at(until, events.next()).await {
            Ok(Some(Ok(event))) => seen.push(event),
            Ok(Some(Err(e))) => return Err(engine(e)),
            Ok(None) | Err(_) => return Ok(oom_of(&seen)),
        }
    }
}

/// What a container's `oom` and `die` events say of the memory limit: an `oom` event is
/// one; so is a death by SIGKILL (exit 137), which nothing inside can send to the agent,
/// its first process, and the worker had not sent (it asks before it kills; an operator's
/// `docker kill` reads the same); any other death is not. `None` before either, or for a
/// death that names no exit code.
fn oom_of(events: &[EventMessage]) -> Option<bool> {
    let is = |e: &EventMessage, action: &str| e.action.as_deref() == Some(action);
    if events.iter().any(|e| is(e, "oom")) {
        return Some(true);
    }
    let died = events.iter().find(|e| is(e, "die"))?;
    let exit_code = died
        .actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .and_then(|a| a.get("exitCode"))?;
    Some(exit_code == "137")
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
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
        let c = container_config(&config, 128, 2_000_123);
        assert_eq!(
            c.entrypoint,
            Some(vec![AGENT_PATH.to_owned()]),
            "the agent is PID 1"
        );
        assert_eq!(
            c.user.as_deref(),
            Some("2000123:2000123"),
            "its own identity, not root"
        );
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
        assert_eq!(h.oom_score_adj, Some(1000));
        assert_eq!(h.masked_paths, Some(crate::sandbox::proc_paths::masked()));
        assert_eq!(
            h.readonly_paths,
            Some(crate::sandbox::proc_paths::readonly())
        );
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(h.cap_add.is_none());
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        let policy = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []});
        let with_policy = SandboxConfig {
            seccomp: Some(std::sync::Arc::new(policy.clone())),
            ..SandboxConfig::default()
        };
        let opts = container_config(&with_policy, 128, 2_000_123)
            .host_config
            .unwrap()
            .security_opt
            .unwrap();
        assert_eq!(opts[0], "no-new-privileges");
        let profile = opts[1].strip_prefix("seccomp=").expect("a seccomp profile");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(profile).unwrap(),
            policy,
            "the same policy as the runc engine's"
        );
        assert_eq!(h.memory, Some(128 * 1024 * 1024));
        assert_eq!(h.memory_swap, h.memory, "no swap beyond the memory limit");
        assert_eq!(h.nano_cpus, Some(1_000_000_000));
        assert_eq!(
            h.pids_limit,
            Some(GVISOR_HOST_PIDS),
            "on gVisor the Sentry's threads; the program gets RLIMIT_NPROC"
        );
        let runc = container_config(&SandboxConfig::default(), 128, 2_000_123);
        assert_eq!(runc.host_config.unwrap().pids_limit, Some(64));
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
        assert_eq!(h.auto_remove, Some(true), "gone with its worker");
        assert!(h.pid_mode.is_none() && h.ipc_mode.is_none() && h.userns_mode.is_none());
    }

    fn event(action: &str, exit_code: Option<&str>) -> EventMessage {
        EventMessage {
            action: Some(action.to_owned()),
            actor: Some(bollard::models::EventActor {
                id: Some("c".to_owned()),
                attributes: exit_code
                    .map(|c| HashMap::from([("exitCode".to_owned(), c.to_owned())])),
            }),
            ..Default::default()
        }
    }

    /// An agent gone without a report is the memory limit only when the engine says so:
    /// its `oom` event, or its death by a SIGKILL the worker did not send; any other
    /// death is certainly not (the run's own verdict); no death yet is not known (the
    /// step is retried).
    #[test]
    fn the_engines_events_tell_the_memory_limit_apart() {
        assert_eq!(oom_of(&[]), None);
        assert_eq!(oom_of(&[event("die", Some("137"))]), Some(true));
        assert_eq!(
            oom_of(&[event("oom", None), event("die", Some("0"))]),
            Some(true)
        );
        assert_eq!(oom_of(&[event("oom", None)]), Some(true));
        assert_eq!(oom_of(&[event("die", Some("101"))]), Some(false));
        assert_eq!(oom_of(&[event("die", Some("1"))]), Some(false));
        assert_eq!(oom_of(&[event("die", None)]), None);
    }
}

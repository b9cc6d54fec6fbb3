//! The OCI engines: the same single-use sandbox as the Docker engine's, run by the worker
//! with an OCI runtime itself (`runc run`, gVisor's `runsc run` or `crun run` on the same
//! bundle), without a daemon between them.
//!
//! Docker stays the image store: the runner image is built and loaded as before, and its
//! filesystem (the overlay2 layers the engine keeps) is the read-only root of every
//! sandbox. What Docker adds to each container's start — its API round trips, containerd,
//! a shim process, network plumbing, bookkeeping for `docker ps` — is what the worker's
//! throughput was spent on (dockerd and containerd took about half of both cores under
//! load); `runc run` alone starts the same container, with the same protections, in a
//! fraction of that.
//!
//! Each container: a bundle directory of its own (`config.json`, and the task it serves
//! once it has one), the runner image's root read-only, a fresh tmpfs `/tmp`, a uid of its own, no
//! capabilities, no-new-privileges, Docker's default seccomp policy (from the containers-
//! common profile, with the sandbox's own denials on top, see [`super::seccomp`]), Docker's masked
//! and read-only `/proc` paths, new PID, network (loopback only), IPC, UTS and mount
//! namespaces, memory (+ swap) / CPU / pids limits in a cgroup of its own. The agent is its
//! first process, on the pipes of the `runc run` the worker spawned: stdin the job, stdout
//! the frames.
//!
//! gVisor's `runsc` takes the same bundle: its Sentry implements the system calls the
//! program makes (the seccomp policy in the spec is runc's concern; runsc filters the
//! Sentry's own calls to the host), the rest — root, mounts, limits, identity — as above.
//!
//! crun takes it too: runc's boundary started by a C program, its root read-only by the
//! spec with the image's directories bound again `nosuid` and `nodev` (see `spec.rs`).
//!
//! Files: `host.rs` (directories, the image's root, the daemon's settings), `spec.rs`
//! (the OCI spec), `container.rs` (one sandbox), `version.rs` (the oldest runc run).

mod container;
pub mod host;
mod spec;
mod version;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use codebox_agent::AGENT_PATH;
use codebox_core::Error;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::{Engine, Prepared, pipes};
use crate::sandbox::SandboxConfig;
use container::{OciContainer, messages, wait_for};
pub use host::{Daemon, StoredImage, bundles, run_dir, runc_root, state_root};

/// Which OCI runtime runs the bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// runc: the program's system calls go to the host kernel, through the seccomp policy.
    Runc,
    /// gVisor: the program's system calls go to gVisor's Sentry, a kernel in user space.
    Runsc,
    /// crun: runc's boundary (the host kernel, through the same seccomp policy), started
    /// by a C program instead of a Go one: a sandbox's start costs the host less.
    Crun,
}

impl Runtime {
    /// Its name: the binary's, its state directory's and the engine's in logs.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Runsc => "runsc",
            Runtime::Crun => "crun",
        }
    }
}

/// In a bundle: the task the sandbox serves, once it serves one.
pub const TASK_FILE: &str = "task";
/// Sandbox ids start with this.
pub const ID_PREFIX: &str = "codebox-";
/// The container's pids limit on gVisor: there it bounds the Sentry's host threads (a
/// compile needs more than 80), and the program's processes are bounded by
/// `RLIMIT_NPROC` inside the sandbox instead, which gVisor enforces per sandbox.
pub(crate) const GVISOR_HOST_PIDS: i64 = 1024;
/// Tasks the agent itself may use (its main thread, two readers, the reaper).
pub(crate) const AGENT_TASKS: i64 = 4;
/// Time a container gets to be created (its init started, waiting for the job).
const CREATE_WAIT: Duration = Duration::from_secs(20);
/// Time a container gets to end by itself when disposed of: its agent, past its report,
/// leaves once its stdin is closed, in a millisecond or two.
const OWN_END: Duration = Duration::from_millis(250);
/// Time a killed container gets to end before its runc is killed and the state deleted.
const END_WAIT: Duration = Duration::from_secs(10);
/// Bytes of runc's messages kept for an error.
const MESSAGES: usize = 4096;
/// The one variable the runtime is given.
const RUNC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Time one runc command (kill, delete, list) gets.
const RUNC_CALL: Duration = Duration::from_secs(10);

/// An OCI engine: the runtime, the runner image's root, the seccomp policy.
pub struct OciEngine {
    runtime: Runtime,
    binary: PathBuf,
    /// The runtime's state directory of this deployment.
    root: PathBuf,
    rootfs: PathBuf,
    seccomp: Value,
    /// The kernel limits swap per cgroup (cgroup v2, or v1 with `memory.memsw`): swap is set
    /// equal to memory, so a program gets no swap beyond its memory limit.
    swap: bool,
    /// cgroup v2: a cgroup namespace of its own, so `/sys/fs/cgroup` shows the sandbox's
    /// cgroup alone (on v1 runc binds the sandbox's own cgroup directories there).
    cgroup_ns: bool,
    /// AppArmor profile, where the host enforces AppArmor (Docker's `docker-default`).
    apparmor: Option<String>,
    /// The image root's directories bound again read-only, `nosuid` and `nodev` (crun,
    /// whose remount of the root drops both flags; see [`host::root_dirs`]).
    root_dirs: Vec<String>,
    config: SandboxConfig,
    /// Disposals begun by a drop; the worker's shutdown waits for them.
    disposals: TaskTracker,
}

impl OciEngine {
    /// The engine beside `docker`: the daemon's ways and its store's runner image, as
    /// [`Self::open`] takes them.
    pub async fn beside(
        docker: &super::docker::DockerEngine,
        config: &SandboxConfig,
        runtime: Runtime,
        disposals: TaskTracker,
    ) -> anyhow::Result<Self> {
        let daemon = docker.daemon().await?;
        let image = docker.stored_image(&config.image).await?;
        Self::open(&daemon, image, config, runtime, disposals).await
    }

    /// Mounts the runner image's root from the Docker engine's store (overlay2): its
    /// layers read-only when it has several; checks the runtime and that the daemon makes
    /// its containers no tighter than this engine does.
    pub async fn open(
        daemon: &Daemon,
        image: StoredImage,
        config: &SandboxConfig,
        runtime: Runtime,
        disposals: TaskTracker,
    ) -> anyhow::Result<Self> {
        host::same_as_dockers_default(daemon, runtime)?;
        let binary = PathBuf::from(match runtime {
            Runtime::Runc => config.runc.as_str(),
            Runtime::Runsc => config.runsc.as_str(),
            Runtime::Crun => config.crun.as_str(),
        });
        let version = match bare(&binary).arg("--version").output().await {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => anyhow::bail!(
                "{} ({}) does not run; install Debian's `{}` package",
                runtime.name(),
                binary.display(),
                runtime.name()
            ),
        };
        match runtime {
            Runtime::Runc => version::check(&version).map_err(anyhow::Error::msg)?,
            Runtime::Crun => {
                version::check_crun(&version).map_err(anyhow::Error::msg)?;
                host::crun_cgroups(Path::new(host::HYBRID_V2_CONTROLLERS))?;
            }
            Runtime::Runsc => {}
        }
        if image.driver != "overlay2" {
            anyhow::bail!(
                "the {} engine reads the runner image from Docker's overlay2 store; this engine uses {}",
                runtime.name(),
                image.driver
            );
        }
        if image.layers.is_empty() {
            anyhow::bail!("the runner image {} has no layers", config.image);
        }
        let (id, layers) = (image.id, image.layers);
        let rootfs = host::mount_root(&id, &layers).await?;
        let root_dirs = match runtime {
            Runtime::Crun => host::root_dirs(&rootfs)?,
            Runtime::Runc | Runtime::Runsc => Vec::new(),
        };
        let seccomp = match config.seccomp.as_deref() {
            Some(policy) => policy.clone(),
            None => crate::sandbox::seccomp::load(&config.seccomp_profile).await?,
        };
        let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let apparmor = host::apparmor_profile(daemon).await?;
        let root = state_root(runtime);
        for dir in [&root, &bundles(runtime)] {
            tokio::fs::create_dir_all(dir).await?;
        }
        Ok(Self {
            runtime,
            binary,
            root,
            rootfs,
            seccomp,
            swap: unified
                || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            cgroup_ns: unified,
            apparmor,
            root_dirs,
            config: config.clone(),
            disposals,
        })
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// The runtime with its state directory and options, output discarded.
    fn command(&self) -> Command {
        let mut c = bare(&self.binary);
        c.arg("--root").arg(&self.root);
        if self.runtime == Runtime::Runsc {
            // No network stack at all in the Sentry: not even loopback.
            c.arg("--network=none");
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `<runtime> <args>` to its end, at most [`RUNC_CALL`]; whether it succeeded.
    async fn call(&self, args: &[&str]) -> bool {
        let status = tokio::time::timeout(RUNC_CALL, self.command().args(args).status()).await;
        matches!(status, Ok(Ok(s)) if s.success())
    }

    /// The pids limit of a sandbox's cgroup, and the `RLIMIT_NPROC` its agent sets.
    fn pids(&self) -> (i64, Option<u64>) {
        match self.runtime {
            Runtime::Runc | Runtime::Crun => (self.config.pids, None),
            Runtime::Runsc => (
                GVISOR_HOST_PIDS.max(self.config.pids),
                Some((self.config.pids + AGENT_TASKS).max(0) as u64),
            ),
        }
    }

    /// Starts a sandbox with `memory_mb` of memory: its agent runs, waiting for the job.
    async fn start(self: &Arc<Self>, memory_mb: u32) -> Result<Prepared, Error> {
        let timer = crate::stages::Timer::start("bundle");
        let identity = self.config.identities.take()?;
        let id = format!("{ID_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let bundle = bundles(self.runtime).join(&id);
        let spec = spec::spec(&self.config, self, &id, memory_mb, identity.uid());
        let written = async {
            tokio::fs::create_dir(&bundle).await?;
            tokio::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_dir_all(&bundle).await;
            return Err(Error::Unavailable(format!("writing a sandbox bundle: {e}")));
        }
        timer.done();
        let timer = crate::stages::Timer::start("create");
        let pid_file = bundle.join("pid");
        let mut command = self.command();
        command
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        let mut container = OciContainer {
            oci: self.clone(),
            id,
            bundle,
            exit: None,
            stop: None,
            killed: false,
            done: false,
            identity: Some(identity),
        };
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                container.dispose().await;
                return Err(Error::Unavailable(format!(
                    "starting {}: {e}",
                    self.runtime.name()
                )));
            }
        };
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            container.dispose().await;
            return Err(Error::Unavailable(format!(
                "{}'s pipes are missing",
                self.runtime.name()
            )));
        };
        let (tx, exit) = watch::channel(None);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(wait_for(child, tx, stopped));
        container.exit = Some(exit.clone());
        container.stop = Some(stop);
        // Created when the runtime has written the init's pid (it starts it right after).
        let deadline = Instant::now() + CREATE_WAIT;
        loop {
            if tokio::fs::try_exists(&pid_file).await.unwrap_or(false) {
                break;
            }
            if exit.borrow().is_some() || Instant::now() > deadline {
                let said = messages(&mut stderr).await;
                container.dispose().await;
                return Err(Error::Unavailable(format!(
                    "{} did not start a sandbox: {}",
                    self.runtime.name(),
                    said.trim()
                )));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        timer.done();
        Ok(Prepared::new(
            Box::new(container),
            pipes(stdout, stderr),
            Box::pin(stdin),
            self.pids().1,
        ))
    }

    /// Sandboxes of this engine a dead worker left: never started or ended ones older than
    /// 10 s (runc deletes a container when its first process ends, unless runc itself was
    /// killed), running ones older than `running_age` (stuck); bundles of no container
    /// older than a minute. Returns how many containers it removed.
    pub async fn reap(&self, idle_age: Duration, running_age: Duration) -> anyhow::Result<usize> {
        // runc lists by reading each container's state, and fails when one is deleted
        // as it reads: a few tries.
        let mut tries = 0;
        let out = loop {
            let out = tokio::time::timeout(
                RUNC_CALL,
                self.command()
                    .args(["list", "--format", "json"])
                    .stdout(Stdio::piped())
                    .output(),
            )
            .await
            .map_err(|_| anyhow::anyhow!("runc list did not answer within 10 s"))??;
            tries += 1;
            if out.status.success() {
                break out;
            }
            if tries == 5 {
                anyhow::bail!("runc list failed 5 times");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // `null` when there is none.
        let list: Option<Vec<Value>> = serde_json::from_slice(&out.stdout)
            .map_err(|e| anyhow::anyhow!("runc list answered no list: {e}"))?;
        let list = list.unwrap_or_default();
        // A container whose `runc run` still runs is its worker's to end, whatever its
        // state: a step's container is "stopped" for a moment before runc deletes it.
        let driven = tokio::task::spawn_blocking(host::runc_runs).await?;
        let now = chrono::Utc::now();
        let mut removed = 0;
        let mut live = std::collections::HashSet::new();
        for c in list {
            let (Some(id), Some(status)) = (c["id"].as_str(), c["status"].as_str()) else {
                continue;
            };
            live.insert(id.to_owned());
            // runc says when it created the container; runsc does not, and its bundle's
            // last change (made, or given its task) stands in.
            let created = c["created"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    (now - t.with_timezone(&chrono::Utc))
                        .to_std()
                        .unwrap_or_default()
                });
            // One without a bundle any more (its disposal removed it, its deletion
            // failed) is as old as can be: only the reaper ends it now.
            let age = match created {
                Some(age) => age,
                None => tokio::fs::metadata(bundles(self.runtime).join(id))
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .map_or(Duration::MAX, |m| m.elapsed().unwrap_or_default()),
            };
            let stale = match status {
                "running" | "paused" => age > running_age,
                _ => age > idle_age && !driven.contains(id),
            };
            if stale && id.starts_with(ID_PREFIX) {
                self.call(&["kill", id, "KILL"]).await;
                self.call(&["delete", "--force", id]).await;
                let _ = tokio::fs::remove_dir_all(bundles(self.runtime).join(id)).await;
                removed += 1;
            }
        }
        let mut dir = tokio::fs::read_dir(bundles(self.runtime)).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|a| a > Duration::from_secs(60));
            if old && !live.contains(&name) && name.starts_with(ID_PREFIX) {
                let _ = tokio::fs::remove_dir_all(entry.path()).await;
            }
        }
        Ok(removed)
    }
}

/// The runtime binary with an environment of its own making: nothing of the worker's (its
/// credentials, its settings) reaches it or what it starts.
fn bare(binary: &Path) -> Command {
    let mut c = Command::new(binary);
    c.env_clear().env("PATH", RUNC_PATH);
    c
}

/// The engine as the worker sees it: `Arc`ed, so its containers can dispose of themselves.
pub struct Oci(pub Arc<OciEngine>);

#[async_trait]
impl Engine for Oci {
    fn name(&self) -> &'static str {
        self.0.runtime.name()
    }

    async fn prepare(&self, memory_mb: u32) -> Result<Prepared, Error> {
        self.0.start(memory_mb).await
    }

    /// Readiness: the image's root is there.
    async fn ping(&self) -> anyhow::Result<()> {
        if !self
            .0
            .rootfs
            .join(AGENT_PATH.trim_start_matches('/'))
            .exists()
        {
            anyhow::bail!(
                "the runner image's root {} is gone (the image was removed?); restart the worker after `make runner-image`",
                self.0.rootfs.display()
            );
        }
        Ok(())
    }

    async fn reap(&self, age: Duration) -> anyhow::Result<usize> {
        let removed = self
            .0
            .reap(
                age.min(super::NEVER_STARTED_LEFTOVER),
                age.max(super::RUNNING_LEFTOVER),
            )
            .await?;
        if removed > 0 {
            tracing::warn!(
                removed,
                engine = self.name(),
                "removed stale sandboxes of a worker that died"
            );
        }
        Ok(removed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An engine as `open` would make it, for the tests of its parts.
    pub(crate) fn engine(swap: bool) -> OciEngine {
        OciEngine {
            runtime: Runtime::Runc,
            binary: PathBuf::from("runc"),
            root: PathBuf::from("/run/codebox/runc"),
            rootfs: PathBuf::from("/var/lib/docker/overlay2/x/diff"),
            seccomp: serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}),
            swap,
            cgroup_ns: false,
            apparmor: None,
            root_dirs: Vec::new(),
            config: SandboxConfig::default(),
            disposals: TaskTracker::new(),
        }
    }
}

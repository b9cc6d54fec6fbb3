//! The runc engine: the same single-use sandbox as the Docker engine's, run by the worker
//! with the OCI runtime itself (`runc run`), without a daemon between them.
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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codebox_agent::AGENT_PATH;
use codebox_core::Error;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;

use super::SandboxConfig;

/// The deployment's own directory (`CODEBOX_RUN_DIR`, default `/run/codebox`): runc's
/// state in `runc/` (its own root, so `runc list` shows this deployment's sandboxes only)
/// and one bundle per sandbox in `bundles/`. Two deployments on one host (two test suites,
/// say) give two directories, so neither's reaper touches the other's sandboxes.
pub fn run_dir() -> PathBuf {
    std::env::var_os("CODEBOX_RUN_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/run/codebox"), PathBuf::from)
}

/// runc's state directory (`--root`) of this deployment.
pub fn runc_root() -> PathBuf {
    run_dir().join("runc")
}

/// This deployment's sandbox bundles.
pub fn bundles() -> PathBuf {
    run_dir().join("bundles")
}
/// Where a runner image made of several layers is mounted (read-only overlay).
const ROOTFS: &str = "/run/codebox/rootfs";
/// In a bundle: the task the sandbox serves, once it serves one.
pub const TASK_FILE: &str = "task";
/// Sandbox ids start with this.
pub const ID_PREFIX: &str = "codebox-";

/// Time a container gets to be created (its init started, waiting for the job).
const CREATE_WAIT: Duration = Duration::from_secs(20);
/// Time a killed container gets to end before its runc is killed and the state deleted.
const END_WAIT: Duration = Duration::from_secs(10);
/// Bytes of runc's messages kept for an error.
const MESSAGES: usize = 4096;
/// The one variable runc is given.
const RUNC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Time one runc command (kill, delete, list) gets.
const RUNC_CALL: Duration = Duration::from_secs(10);

/// The engine: runc, the runner image's root, the seccomp policy.
pub struct Oci {
    runc: PathBuf,
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
}

impl Oci {
    /// Finds the runner image's root in the Docker engine's store (overlay2), mounting its
    /// layers read-only when it has several, and reads the seccomp profile.
    pub async fn open(docker: &bollard::Docker, config: &SandboxConfig) -> anyhow::Result<Self> {
        if config.runtime.as_deref().is_some_and(|r| r != "runc") {
            anyhow::bail!(
                "the runc engine runs runc itself; for gVisor ({}) use CODEBOX_SANDBOX_ENGINE=docker",
                config.runtime.as_deref().unwrap_or_default()
            );
        }
        let info = docker.info().await?;
        same_as_dockers_default(&info)?;
        let runc = PathBuf::from(&config.runc);
        let version = match Command::new(&runc).arg("--version").output().await {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => anyhow::bail!(
                "runc ({}) does not run; install Debian's `runc` package (it comes with docker.io)",
                runc.display()
            ),
        };
        super::runc_version::check(&version).map_err(anyhow::Error::msg)?;
        let image = docker.inspect_image(&config.image).await.map_err(|_| {
            anyhow::anyhow!(
                "the runner image {} is missing; build it with `make runner-image`",
                config.image
            )
        })?;
        let id = image.id.unwrap_or_default();
        let driver = image
            .graph_driver
            .ok_or_else(|| anyhow::anyhow!("the engine does not say where the runner image is"))?;
        if driver.name != "overlay2" {
            anyhow::bail!(
                "the runc engine reads the runner image from Docker's overlay2 store; this engine uses {}",
                driver.name
            );
        }
        let data = &driver.data;
        let mut layers: Vec<String> = data.get("UpperDir").cloned().into_iter().collect();
        if let Some(lower) = data.get("LowerDir") {
            layers.extend(lower.split(':').map(str::to_owned));
        }
        if layers.is_empty() {
            anyhow::bail!("the runner image {} has no layers", config.image);
        }
        let rootfs = mount_root(&id, &layers).await?;
        let seccomp = match config.seccomp.as_deref() {
            Some(policy) => policy.clone(),
            None => super::seccomp::load(&config.seccomp_profile).await?,
        };
        let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let apparmor = apparmor_profile(&info).await?;
        for dir in [runc_root(), bundles()] {
            tokio::fs::create_dir_all(dir).await?;
        }
        Ok(Self {
            runc,
            rootfs,
            seccomp,
            swap: unified
                || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            cgroup_ns: unified,
            apparmor,
        })
    }

    /// Readiness: runc runs and the image's root is there.
    pub async fn ping(&self) -> anyhow::Result<()> {
        if !self
            .rootfs
            .join(AGENT_PATH.trim_start_matches('/'))
            .exists()
        {
            anyhow::bail!(
                "the runner image's root {} is gone (the image was removed?); restart the worker after `make runner-image`",
                self.rootfs.display()
            );
        }
        Ok(())
    }

    fn runc(&self) -> Command {
        let mut c = self.bare_runc();
        c.arg("--root").arg(runc_root());
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// runc with an environment of its own making: nothing of the worker's (its
    /// credentials, its settings) reaches runc or what runc starts.
    fn bare_runc(&self) -> Command {
        let mut c = Command::new(&self.runc);
        c.env_clear().env("PATH", RUNC_PATH);
        c
    }

    /// Runs `runc <args>` to its end, at most [`RUNC_CALL`]; whether it succeeded.
    async fn call(&self, args: &[&str]) -> bool {
        let status = tokio::time::timeout(RUNC_CALL, self.runc().args(args).status()).await;
        matches!(status, Ok(Ok(s)) if s.success())
    }

    /// Starts a sandbox with `memory_mb` of memory: its agent runs, waiting for the job.
    pub async fn prepare(
        self: &Arc<Self>,
        config: &SandboxConfig,
        memory_mb: u32,
    ) -> Result<Started, Error> {
        let identity = config.identities.take()?;
        let id = format!("{ID_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let bundle = bundles().join(&id);
        let spec = spec(config, self, &id, memory_mb, identity.uid());
        let written = async {
            tokio::fs::create_dir(&bundle).await?;
            tokio::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_dir_all(&bundle).await;
            return Err(Error::Unavailable(format!("writing a sandbox bundle: {e}")));
        }
        let pid_file = bundle.join("pid");
        let mut command = self.bare_runc();
        command
            .arg("--root")
            .arg(runc_root())
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut container = Container {
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
                return Err(Error::Unavailable(format!("starting runc: {e}")));
            }
        };
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            container.dispose().await;
            return Err(Error::Unavailable("runc's pipes are missing".into()));
        };
        let (tx, exit) = watch::channel(None);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(wait_for(child, tx, stopped));
        container.exit = Some(exit.clone());
        container.stop = Some(stop);
        // Created when runc has written the init's pid (it starts it right after).
        let deadline = Instant::now() + CREATE_WAIT;
        loop {
            if tokio::fs::try_exists(&pid_file).await.unwrap_or(false) {
                break;
            }
            if exit.borrow().is_some() || Instant::now() > deadline {
                let said = messages(&mut stderr).await;
                container.dispose().await;
                return Err(Error::Unavailable(format!(
                    "runc did not start a sandbox: {}",
                    said.trim()
                )));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        Ok(Started {
            container,
            stdin,
            stdout,
            stderr,
        })
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
                self.runc()
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
        let driven = tokio::task::spawn_blocking(runc_runs).await?;
        let now = chrono::Utc::now();
        let mut removed = 0;
        let mut live = std::collections::HashSet::new();
        for c in list {
            let (Some(id), Some(status)) = (c["id"].as_str(), c["status"].as_str()) else {
                continue;
            };
            live.insert(id.to_owned());
            let age = c["created"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    (now - t.with_timezone(&chrono::Utc))
                        .to_std()
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let stale = match status {
                "running" | "paused" => age > running_age,
                _ => age > idle_age && !driven.contains(id),
            };
            if stale && id.starts_with(ID_PREFIX) {
                self.call(&["kill", id, "KILL"]).await;
                self.call(&["delete", "--force", id]).await;
                let _ = tokio::fs::remove_dir_all(bundles().join(id)).await;
                removed += 1;
            }
        }
        let mut dir = tokio::fs::read_dir(bundles()).await?;
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

/// A sandbox just started, with the pipes to its agent.
pub struct Started {
    pub container: Container,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: ChildStderr,
}

/// How the `runc run` of a sandbox ended: `Some(signal)` when its first process was killed.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub killed_by: Option<i32>,
}

/// Waits for the `runc run` of a sandbox to end, or kills it when told to (or when its
/// container is dropped).
async fn wait_for(
    mut child: Child,
    tx: watch::Sender<Option<Exit>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = stop => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // runc answers a first process killed by a signal with 128 + the signal.
    let killed_by = status
        .ok()
        .and_then(|s| s.code())
        .filter(|c| *c > 128)
        .map(|c| c - 128);
    let _ = tx.send(Some(Exit { killed_by }));
}

async fn messages(stderr: &mut ChildStderr) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        stderr.take(MESSAGES as u64).read_to_end(&mut buf),
    )
    .await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// One sandbox: ended and deleted by [`Container::dispose`].
pub struct Container {
    oci: Arc<Oci>,
    id: String,
    bundle: PathBuf,
    exit: Option<watch::Receiver<Option<Exit>>>,
    /// Kills its `runc run` (the last resort of `dispose`; dropping it does the same).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The worker killed it (its end says nothing of the program).
    killed: bool,
    done: bool,
    /// Its uid, given back once it is gone.
    identity: Option<super::identity::Identity>,
}

impl Drop for Container {
    /// A container dropped before `dispose` (a preparation cut short): disposed of in the
    /// background.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // Marked done: should the runtime drop this future unrun (it is shutting down),
        // the drop ends here, and dropping the stop handle still kills the `runc run`.
        let mut rest = Container {
            oci: self.oci.clone(),
            id: std::mem::take(&mut self.id),
            bundle: std::mem::take(&mut self.bundle),
            exit: self.exit.take(),
            stop: self.stop.take(),
            killed: self.killed,
            done: true,
            identity: self.identity.take(),
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            // Tracked: a worker's shutdown waits for it (`step::settle_dropped`).
            handle.spawn(super::step::DROPPED.track_future(async move { rest.release().await }));
        }
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records the task it serves, for `runc list` readers (the tests, an operator), off
    /// the step's path.
    pub fn serves(&self, task: codebox_core::domain::TaskId) -> tokio::task::JoinHandle<()> {
        let path = self.bundle.join(TASK_FILE);
        tokio::spawn(async move {
            let _ = tokio::fs::write(path, task.to_string()).await;
        })
    }

    /// How it ended, waiting at most `wait` for it.
    pub async fn ended(&self, wait: Duration) -> Option<Exit> {
        let mut exit = self.exit.clone()?;
        let ended = tokio::time::timeout(wait, exit.wait_for(Option::is_some)).await;
        match ended {
            Ok(Ok(e)) => *e,
            _ => None,
        }
    }

    /// Whether the memory limit killed its first process (the agent, gone without a
    /// report): killed by SIGKILL, which nothing inside can send to it and the worker did
    /// not.
    pub async fn saw_oom(&self) -> bool {
        !self.killed
            && self
                .ended(Duration::from_secs(2))
                .await
                .is_some_and(|e| e.killed_by == Some(9))
    }

    /// Kills it when it still runs, waits for its end, deletes what is left.
    pub async fn dispose(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.release().await;
    }

    async fn release(&mut self) {
        self.killed = true;
        let oci = self.oci.clone();
        if self.exit.is_some() {
            if self.ended(Duration::ZERO).await.is_none() {
                oci.call(&["kill", &self.id, "KILL"]).await;
            }
            if self.ended(END_WAIT).await.is_none() {
                tracing::warn!(
                    container = self.id,
                    "a killed sandbox did not end within 10 s; killing its runc and deleting it"
                );
            }
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // runc deletes a container whose first process ended; this covers a runc that
        // was itself killed or never got that far.
        oci.call(&["delete", "--force", &self.id]).await;
        if let Err(e) = tokio::fs::remove_dir_all(&self.bundle).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(container = self.id, error = %e, "removing a sandbox bundle failed");
        }
        // The uid goes back only once runc knows the container no more (its processes
        // died with its first one, or with the kill): one that could not be deleted may
        // still run as it, so it keeps the uid for good.
        let gone = self.exit.is_none() || !oci.call(&["state", &self.id]).await;
        if gone {
            self.identity = None;
        } else if let Some(identity) = self.identity.take() {
            tracing::warn!(
                container = self.id,
                "a sandbox outlived its deletion; its uid is not reused"
            );
            std::mem::forget(identity);
        }
    }
}

/// The sandbox ids of every `runc run` process on the host.
fn runc_runs() -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return ids;
    };
    for entry in procs.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"run".as_slice())
            && let Some(id) = args.iter().rev().find(|a| !a.is_empty())
            && id.starts_with(ID_PREFIX.as_bytes())
        {
            ids.insert(String::from_utf8_lossy(id).into_owned());
        }
    }
    ids
}

/// What the engine's daemon adds to every container that this engine would not: another
/// default runtime (gVisor), user-namespace remapping, SELinux labels, a seccomp profile
/// of the operator's. Where any is set, sandboxes stay with Docker.
fn same_as_dockers_default(info: &bollard::models::SystemInfo) -> anyhow::Result<()> {
    let runtime = info.default_runtime.as_deref().unwrap_or("runc");
    if runtime != "runc" {
        anyhow::bail!("the engine's default runtime is {runtime}, not runc");
    }
    for option in info.security_options.iter().flatten() {
        let name = option
            .split(',')
            .find_map(|kv| kv.strip_prefix("name="))
            .unwrap_or_default();
        let custom_seccomp = name == "seccomp" && !option.contains("profile=default");
        if matches!(name, "userns" | "selinux" | "rootless") || custom_seccomp {
            anyhow::bail!("the engine applies {option}, which this engine does not");
        }
    }
    Ok(())
}

/// Docker's AppArmor profile where the host enforces AppArmor: it must be loaded (Docker
/// loads it when it starts), or the sandboxes stay with Docker.
async fn apparmor_profile(info: &bollard::models::SystemInfo) -> anyhow::Result<Option<String>> {
    let enabled = tokio::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .await
        .is_ok_and(|v| v.trim() == "Y");
    if !enabled {
        return Ok(None);
    }
    let apparmor_in_docker = info
        .security_options
        .iter()
        .flatten()
        .any(|o| o.contains("name=apparmor"));
    let loaded = tokio::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
        .await
        .unwrap_or_default();
    if apparmor_in_docker && loaded.lines().any(|l| l.starts_with("docker-default ")) {
        Ok(Some("docker-default".to_owned()))
    } else {
        anyhow::bail!("AppArmor is enforced here and Docker's docker-default profile is not loaded")
    }
}

/// The flags of the runner image's root on the host, which every sandbox's root keeps
/// (runc binds it): read-only, and neither set-uid bits nor device nodes in the image
/// take effect.
const ROOT_FLAGS: [&str; 3] = ["ro", "nosuid", "nodev"];

/// Mounts the runner image's root for the sandboxes: its layers as one read-only overlay,
/// or its one layer bound, with [`ROOT_FLAGS`]. A root mounted before (by an older worker,
/// without some flag) is remounted with them.
async fn mount_root(id: &str, layers: &[String]) -> anyhow::Result<PathBuf> {
    let name = id.trim_start_matches("sha256:");
    let target = Path::new(ROOTFS).join(&name[..name.len().min(24)]);
    let target_str = target.to_string_lossy().into_owned();
    let mounts = tokio::fs::read_to_string("/proc/self/mounts").await?;
    // The last mount on the target is the one a sandbox would bind.
    let existing = mounts
        .lines()
        .rfind(|l| l.split(' ').nth(1) == Some(target_str.as_str()))
        .map(|l| l.split(' ').nth(3).unwrap_or_default().to_owned());
    let flags = ROOT_FLAGS.join(",");
    match existing {
        Some(options) => {
            let has = |flag: &str| options.split(',').any(|o| o == flag);
            if !ROOT_FLAGS.iter().all(|f| has(f)) {
                let remount = if options.contains("lowerdir=") {
                    format!("remount,{flags}")
                } else {
                    format!("remount,bind,{flags}")
                };
                mount(&["-o", &remount, &target_str]).await?;
            }
        }
        None => {
            tokio::fs::create_dir_all(&target).await?;
            match layers {
                [one] => {
                    mount(&["--bind", one, &target_str]).await?;
                    mount(&["-o", &format!("remount,bind,{flags}"), &target_str]).await?;
                }
                // No upper directory: the overlay itself is read-only.
                many => {
                    let options = format!("{flags},lowerdir={}", many.join(":"));
                    mount(&["-t", "overlay", "overlay", "-o", &options, &target_str]).await?;
                }
            }
        }
    }
    Ok(target)
}

async fn mount(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("mount").args(args).output().await?;
    if !out.status.success() {
        anyhow::bail!(
            "mounting the runner image's root failed (mount {}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The OCI runtime spec of a sandbox: what Docker would give the same container (see
/// `step::container_config`), written out.
pub(crate) fn spec(config: &SandboxConfig, oci: &Oci, id: &str, memory_mb: u32, uid: u32) -> Value {
    let memory = i64::from(memory_mb) * 1024 * 1024;
    let rlimit = |name: &str, value: i64| json!({"type": name, "hard": value, "soft": value});
    let mut memory_limits = json!({"limit": memory});
    if oci.swap {
        memory_limits["swap"] = json!(memory);
    }
    let period: u64 = 100_000;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if oci.cgroup_ns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": uid},
            "args": [AGENT_PATH],
            "env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=/tmp",
                "TMPDIR=/tmp",
                "LANG=C.UTF-8",
                "PYTHONUNBUFFERED=1",
            ],
            "cwd": "/tmp",
            "capabilities": {
                "bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": [],
            },
            "rlimits": [
                rlimit("RLIMIT_FSIZE", config.file_size_mb * 1024 * 1024),
                rlimit("RLIMIT_NOFILE", 256),
                rlimit("RLIMIT_CORE", 0),
            ],
            "noNewPrivileges": true,
            "oomScoreAdj": super::OOM_SCORE_ADJ,
        },
        // Read-only, nosuid and nodev by the host mount of the root ([`mount_root`]), which
        // runc's bind keeps; runc's own read-only remount would clear nosuid and nodev.
        "root": {"path": oci.rootfs, "readonly": false},
        "hostname": "sandbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "exec", "nosuid", "nodev", format!("size={}m", config.tmpfs_mb), "mode=1777"]},
        ],
        "linux": {
            "cgroupsPath": format!("/codebox/{id}"),
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                ],
                "memory": memory_limits,
                "cpu": {"quota": (config.cpus * period as f64) as i64, "period": period},
                "pids": {"limit": config.pids},
            },
            "namespaces": namespaces,
            "maskedPaths": super::proc_paths::masked(),
            "readonlyPaths": super::proc_paths::readonly(),
            "seccomp": oci.seccomp,
        },
    });
    if let Some(profile) = &oci.apparmor {
        spec["process"]["apparmorProfile"] = json!(profile);
    }
    spec
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn oci(swap: bool) -> Oci {
        Oci {
            runc: PathBuf::from("runc"),
            rootfs: PathBuf::from("/var/lib/docker/overlay2/x/diff"),
            seccomp: json!({"defaultAction": "SCMP_ACT_ERRNO"}),
            swap,
            cgroup_ns: false,
            apparmor: None,
        }
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    /// Every protection of a runc sandbox, pinned: removing any one of them from `spec`
    /// turns this red (the end-to-end suite on this engine checks the kernel applies them).
    #[test]
    fn the_sandbox_spec_is_locked_down() {
        let s = spec(
            &SandboxConfig::default(),
            &oci(true),
            "codebox-x",
            128,
            2_000_123,
        );
        let p = &s["process"];
        assert_eq!(strings(&p["args"]), [AGENT_PATH], "the agent is PID 1");
        assert_eq!(p["user"]["uid"], 2_000_123, "its own identity, not root");
        assert_eq!(p["user"]["gid"], 2_000_123);
        assert!(p["user"].get("additionalGids").is_none());
        assert_eq!(p["terminal"], false);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["oomScoreAdj"], 1000, "the first the kernel kills");
        for set in [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            assert_eq!(p["capabilities"][set], json!([]), "no {set} capability");
        }
        assert!(strings(&p["env"]).iter().all(|e| {
            ["PATH=", "HOME=", "TMPDIR=", "LANG=", "PYTHONUNBUFFERED="]
                .iter()
                .any(|k| e.starts_with(k))
        }));
        let rlimits: std::collections::HashMap<&str, (i64, i64)> = p["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap(),
                    (r["soft"].as_i64().unwrap(), r["hard"].as_i64().unwrap()),
                )
            })
            .collect();
        assert_eq!(rlimits["RLIMIT_FSIZE"], (16 << 20, 16 << 20));
        assert_eq!(rlimits["RLIMIT_NOFILE"], (256, 256));
        assert_eq!(rlimits["RLIMIT_CORE"], (0, 0));
        // The host mount makes it read-only, nosuid and nodev; runc's remount would clear
        // the last two (the end-to-end probe reads the flags in the sandbox).
        assert_eq!(
            s["root"]["readonly"], false,
            "no remount of the root by runc"
        );
        let mounts = s["mounts"].as_array().unwrap();
        for m in mounts {
            let options = strings(&m["options"]);
            assert!(
                !options.contains(&"bind") && !options.contains(&"rbind") && m["type"] != "bind",
                "no host path inside: {m}"
            );
            if m["destination"] != "/tmp" {
                assert!(options.contains(&"nosuid"), "{m}");
            }
        }
        let tmp = mounts.iter().find(|m| m["destination"] == "/tmp").unwrap();
        assert_eq!(tmp["type"], "tmpfs");
        let tmp = strings(&tmp["options"]);
        assert!(tmp.contains(&"nosuid") && tmp.contains(&"nodev") && tmp.contains(&"size=64m"));
        let sys: Vec<&Value> = mounts
            .iter()
            .filter(|m| m["destination"].as_str().unwrap().starts_with("/sys"))
            .collect();
        assert!(
            sys.iter().all(|m| strings(&m["options"]).contains(&"ro")),
            "/sys read-only"
        );
        let l = &s["linux"];
        let namespaces: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                assert!(
                    n.get("path").is_none(),
                    "a namespace of its own, never joined: {n}"
                );
                n["type"].as_str().unwrap()
            })
            .collect();
        for ns in ["pid", "network", "ipc", "uts", "mount"] {
            assert!(namespaces.contains(&ns), "its own {ns} namespace");
        }
        assert!(!namespaces.contains(&"user"));
        let r = &l["resources"];
        assert_eq!(r["memory"]["limit"], 128 << 20);
        assert_eq!(
            r["memory"]["swap"], r["memory"]["limit"],
            "no swap beyond memory"
        );
        assert_eq!(r["cpu"]["quota"], 100_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 64);
        assert_eq!(
            r["devices"][0],
            json!({"allow": false, "access": "rwm"}),
            "every device denied first"
        );
        let allowed: Vec<(i64, Option<i64>)> = r["devices"].as_array().unwrap()[1..]
            .iter()
            .map(|d| {
                assert_eq!(d["type"], "c", "character devices only: {d}");
                (d["major"].as_i64().unwrap(), d["minor"].as_i64())
            })
            .collect();
        assert_eq!(
            allowed,
            [
                (1, Some(3)), // null
                (1, Some(5)), // zero
                (1, Some(7)), // full
                (1, Some(8)), // random
                (1, Some(9)), // urandom
                (5, Some(0)), // tty
                (5, Some(2)), // ptmx
                (136, None),  // its own pts
            ],
            "the standard devices and nothing else"
        );
        assert_eq!(
            strings(&l["maskedPaths"]),
            super::super::proc_paths::masked(),
            "moby's masked paths"
        );
        assert_eq!(
            strings(&l["readonlyPaths"]),
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ],
            "Docker's read-only paths"
        );
        assert!(
            p.get("apparmorProfile").is_none(),
            "none where the host has none"
        );
        assert_eq!(
            l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
            "seccomp applied"
        );
        assert_eq!(l["cgroupsPath"], "/codebox/codebox-x");
        let no_swap = spec(
            &SandboxConfig::default(),
            &oci(false),
            "codebox-x",
            128,
            2_000_123,
        );
        assert!(
            no_swap["linux"]["resources"]["memory"]
                .get("swap")
                .is_none()
        );
        // On cgroup v2 a cgroup namespace of its own; under AppArmor, Docker's profile.
        let v2 = Oci {
            cgroup_ns: true,
            apparmor: Some("docker-default".into()),
            ..oci(true)
        };
        let s = spec(&SandboxConfig::default(), &v2, "codebox-x", 128, 2_000_123);
        assert!(
            s["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "cgroup"}))
        );
        assert_eq!(s["process"]["apparmorProfile"], "docker-default");
    }

    /// A container dropped where no runtime runs its disposal (a worker shutting down):
    /// the drop ends, once (it once recursed until the stack overflowed).
    #[test]
    fn a_container_dropped_without_a_runtime_is_let_go() {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let container = Container {
            oci: Arc::new(oci(true)),
            id: "codebox-dropped".into(),
            bundle: PathBuf::from("/nonexistent/codebox-dropped"),
            exit: None,
            stop: Some(stop),
            killed: false,
            done: false,
            identity: None,
        };
        drop(container);
        assert!(
            matches!(
                stopped.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed)
            ),
            "its runc run is told to end"
        );
    }
}

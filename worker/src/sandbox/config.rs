//! The sandboxes' settings, read once from the environment.

use std::sync::Arc;
use std::time::Duration;

use codebox_core::config::{self, ConfigError};

use super::identity;

/// Which engine runs the sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// The OCI runtime run by the worker where it can (root, the runtime and the seccomp
    /// profile installed, the image in Docker's overlay2 store), else Docker.
    Auto,
    /// The Docker engine (and any runtime registered with it, e.g. gVisor's runsc).
    Docker,
    /// The OCI runtime (runc, or `runsc` or `crun` when it is the runtime asked for) run
    /// by the worker itself on a bundle; Docker keeps the runner image.
    Runc,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub engine: EngineKind,
    /// The runc binary (runc engine).
    pub runc: String,
    /// gVisor's runsc binary (the OCI engine with runtime `runsc`).
    pub runsc: String,
    /// The crun binary (the OCI engine with runtime `crun`).
    pub crun: String,
    /// Docker's default seccomp profile in its JSON format: the sandboxes' policy is made
    /// from it (see [`seccomp`]).
    pub seccomp_profile: String,
    /// That policy, made once at start ([`super::Sandboxes::connect`]) for every engine.
    pub seccomp: Option<Arc<serde_json::Value>>,
    pub image: String,
    /// OCI runtime (e.g. `runsc` for gVisor); the engine's default when `None`.
    pub runtime: Option<String>,
    pub cpus: f64,
    pub pids: i64,
    pub tmpfs_mb: u32,
    pub file_size_mb: i64,
    pub compile_output_bytes: usize,
    pub max_binary_bytes: usize,
    /// Sandbox containers older than this are leftovers of a dead worker.
    pub reap_after: Duration,
    /// Warm containers kept per memory size; `None` = the worker's concurrency.
    pub pool: Option<usize>,
    /// Steps run at once (the worker's concurrency): a judged task runs its tests on the
    /// slots other tasks leave free.
    pub slots: usize,
    /// The uids (and gids) the sandboxes run as, one per live sandbox.
    pub identities: Arc<identity::Identities>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::Auto,
            runc: "runc".to_owned(),
            runsc: "runsc".to_owned(),
            crun: "crun".to_owned(),
            seccomp_profile: "/usr/share/containers/seccomp.json".to_owned(),
            seccomp: None,
            image: "codebox-runner:latest".to_owned(),
            runtime: None,
            cpus: 1.0,
            pids: 64,
            tmpfs_mb: 64,
            file_size_mb: 16,
            compile_output_bytes: 64 * 1024,
            max_binary_bytes: 64 * 1024 * 1024,
            reap_after: Duration::from_secs(90),
            pool: None,
            slots: 1,
            identities: identity::Identities::new(identity::DEFAULT_RANGE),
        }
    }
}

impl SandboxConfig {
    /// `CODEBOX_RUNNER_IMAGE`, `CODEBOX_SANDBOX_RUNTIME`, `CODEBOX_SANDBOX_CPUS` (1),
    /// `CODEBOX_SANDBOX_PIDS` (64), `CODEBOX_SANDBOX_TMPFS_MB` (64),
    /// `CODEBOX_SANDBOX_POOL` (warm containers per memory size; the concurrency),
    /// `CODEBOX_SANDBOX_ENGINE` (`docker`, `runc`), `CODEBOX_RUNC`, `CODEBOX_RUNSC`, `CODEBOX_CRUN`,
    /// `CODEBOX_SECCOMP_PROFILE`,
    /// `CODEBOX_SANDBOX_UIDS` (see [`identity`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let engine = match config::choice(
            "CODEBOX_SANDBOX_ENGINE",
            "auto",
            &["auto", "docker", "runc"],
        )?
        .as_str()
        {
            "runc" => EngineKind::Runc,
            "docker" => EngineKind::Docker,
            _ => EngineKind::Auto,
        };
        // Every setting has a range: 0 means "unlimited" to the engine for several of
        // them, which a typo must not reach.
        Ok(Self {
            engine,
            runc: config::var("CODEBOX_RUNC").unwrap_or(d.runc),
            runsc: config::var("CODEBOX_RUNSC").unwrap_or(d.runsc),
            crun: config::var("CODEBOX_CRUN").unwrap_or(d.crun),
            seccomp_profile: config::var("CODEBOX_SECCOMP_PROFILE").unwrap_or(d.seccomp_profile),
            seccomp: None,
            image: config::var("CODEBOX_RUNNER_IMAGE").unwrap_or(d.image),
            runtime: config::var("CODEBOX_SANDBOX_RUNTIME"),
            cpus: config::parse_in("CODEBOX_SANDBOX_CPUS", d.cpus, 0.01..=64.0, "CPUs")?,
            pids: config::parse_in("CODEBOX_SANDBOX_PIDS", d.pids, 8..=4096, "processes")?,
            tmpfs_mb: config::parse_in("CODEBOX_SANDBOX_TMPFS_MB", d.tmpfs_mb, 1..=4096, "MiB")?,
            reap_after: Duration::from_secs(config::parse_in(
                "CODEBOX_SANDBOX_REAP_AFTER_SECS",
                d.reap_after.as_secs(),
                5..=86_400,
                "seconds",
            )?),
            pool: match config::var("CODEBOX_SANDBOX_POOL") {
                Some(_) => Some(config::parse_in(
                    "CODEBOX_SANDBOX_POOL",
                    0usize,
                    0..=64,
                    "containers",
                )?),
                None => None,
            },
            identities: identity::Identities::from_env()?,
            ..d
        })
    }
}

impl SandboxConfig {
    /// Whether the runtime asked for is gVisor's.
    pub fn gvisor(&self) -> bool {
        self.runtime.as_deref() == Some("runsc")
    }

    /// `/tmp`'s size less 1 MiB of room, the file size limit (the compiler writes the
    /// program, the agent writes it again in the run) and the worker's bound.
    pub(crate) fn tmpfs_bytes_for_artifact(&self) -> usize {
        let tmpfs = (self.tmpfs_mb as usize).saturating_sub(1) * 1024 * 1024;
        let file = usize::try_from(self.file_size_mb).unwrap_or(0) * 1024 * 1024;
        tmpfs.min(file).min(self.max_binary_bytes)
    }
}

//! What the OCI engines need of the host: this deployment's directories, the runner
//! image's root mounted read-only, `nosuid` and `nodev`, the Docker daemon's settings
//! they must match, its AppArmor profile, and the `run` processes alive.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{ID_PREFIX, Runtime};

/// The deployment's own directory (`CODEBOX_RUN_DIR`, default `/run/codebox`): each
/// runtime's state in `runc/`, `runsc/` or `crun/` (its own root, so `runc list` shows this deployment's sandboxes only)
/// and one bundle per sandbox in `bundles/<runtime>/`. Two deployments on one host (two test suites,
/// say) give two directories, so neither's reaper touches the other's sandboxes.
pub fn run_dir() -> PathBuf {
    std::env::var_os("CODEBOX_RUN_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/run/codebox"), PathBuf::from)
}

/// runc's state directory (`--root`) of this deployment.
pub fn runc_root() -> PathBuf {
    state_root(Runtime::Runc)
}

/// A runtime's state directory (`--root`) of this deployment: `runc/`, `runsc/` or `crun/`.
pub fn state_root(runtime: Runtime) -> PathBuf {
    run_dir().join(runtime.name())
}

/// This deployment's bundles of a runtime's sandboxes: each runtime's its own, since a
/// reaper removes the bundles its runtime does not list (a crun worker and a runc
/// worker sharing a host must not take each other's for leftovers).
pub fn bundles(runtime: Runtime) -> PathBuf {
    run_dir().join("bundles").join(runtime.name())
}
/// Where a runner image made of several layers is mounted (read-only overlay).
const ROOTFS: &str = "/run/codebox/rootfs";

/// The sandbox ids of every `runc run` process on the host.
pub(super) fn runc_runs() -> std::collections::HashSet<String> {
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

/// How the Docker daemon beside the worker makes its containers: what an OCI engine must
/// match (the Docker engine reads it, `DockerEngine::daemon`).
#[derive(Debug, Clone, Default)]
pub struct Daemon {
    /// Its default runtime (`runc` unless the operator chose another).
    pub default_runtime: String,
    /// What it adds to every container (`name=seccomp,profile=default`, `name=userns`, …).
    pub security_options: Vec<String>,
    /// The runtimes registered with it (`runc`, and e.g. `runsc` where gVisor is).
    pub runtimes: Vec<String>,
}

impl Daemon {
    /// Refuses a runtime the daemon does not have, naming those it has: Docker itself
    /// would say so only at the first container.
    pub fn has_runtime(&self, runtime: &str) -> anyhow::Result<()> {
        if !self.runtimes.iter().any(|r| r == runtime) {
            anyhow::bail!(
                "the Docker engine has no runtime {runtime} (it has {}): register it in /etc/docker/daemon.json, or run it with CODEBOX_SANDBOX_ENGINE=runc",
                self.runtimes.join(", ")
            );
        }
        Ok(())
    }
}

/// Where the runner image lies in the daemon's store, which an OCI engine mounts as its
/// sandboxes' root (the Docker engine reads it, `DockerEngine::stored_image`).
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub id: String,
    /// The store's driver: only `overlay2`'s layers can be mounted here.
    pub driver: String,
    /// Its layers' directories, the top one first.
    pub layers: Vec<String>,
}

/// What the engine's daemon adds to every container that this engine would not: another
/// default runtime (gVisor), user-namespace remapping, SELinux labels, a seccomp profile
/// of the operator's. Where any is set, sandboxes stay with Docker.
pub(super) fn same_as_dockers_default(daemon: &Daemon, runtime: Runtime) -> anyhow::Result<()> {
    // An engine whose every container runs on another runtime (gVisor) wants at least
    // that: runc would be less. gVisor is never less than the default.
    let default = daemon.default_runtime.as_str();
    if runtime == Runtime::Runc && default != "runc" {
        anyhow::bail!("the engine's default runtime is {default}, not runc");
    }
    if runtime == Runtime::Crun && !matches!(default, "runc" | "crun") {
        anyhow::bail!("the engine's default runtime is {default}, not runc or crun");
    }
    for option in &daemon.security_options {
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
pub(super) async fn apparmor_profile(daemon: &Daemon) -> anyhow::Result<Option<String>> {
    let enabled = tokio::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .await
        .is_ok_and(|v| v.trim() == "Y");
    if !enabled {
        return Ok(None);
    }
    let apparmor_in_docker = daemon
        .security_options
        .iter()
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
pub(super) async fn mount_root(id: &str, layers: &[String]) -> anyhow::Result<PathBuf> {
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

/// The paths every sandbox mounts afresh over the image's own.
const MOUNTED_OVER: [&str; 4] = ["proc", "dev", "sys", "tmp"];

/// The runner image root's top-level directories, for crun to bind again read-only,
/// `nosuid` and `nodev`: crun binds the root and remounts it read-only without keeping
/// the host mount's `nosuid` and `nodev`, while the mounts a spec lists keep their
/// options. Its root then holds directories (each its own such mount, or one mounted
/// over) and symbolic links alone; anything else there (a file, a device node) is
/// refused, since it would be reached without those flags.
pub(super) fn root_dirs(rootfs: &Path) -> anyhow::Result<Vec<String>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(rootfs)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_symlink() || MOUNTED_OVER.contains(&name.as_str()) {
            continue;
        }
        if !kind.is_dir() {
            anyhow::bail!(
                "the runner image's root holds /{name}, which is not a directory: crun's sandboxes would reach it without nosuid and nodev"
            );
        }
        dirs.push(name);
    }
    dirs.sort();
    Ok(dirs)
}

/// A hybrid host's cgroup v2 hierarchy: the controllers it holds.
pub(super) const HYBRID_V2_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// crun (1.8) refuses a hybrid host whose cgroup v2 hierarchy holds controllers; it
/// runs on cgroup v1 or v2 alone, or hybrid with every controller on v1. `controllers`
/// is [`HYBRID_V2_CONTROLLERS`] (absent where the host is not hybrid).
pub(super) fn crun_cgroups(controllers: &Path) -> anyhow::Result<()> {
    let held = std::fs::read_to_string(controllers).unwrap_or_default();
    if !held.trim().is_empty() {
        anyhow::bail!(
            "crun does not run on a hybrid cgroup host whose v2 hierarchy holds controllers ({}); mount them as v1 hierarchies (scripts/ensure-crun.sh does) or run runc",
            held.trim()
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn daemon(default_runtime: &str, options: &[&str]) -> Daemon {
        Daemon {
            default_runtime: default_runtime.to_owned(),
            security_options: options.iter().map(|o| (*o).to_owned()).collect(),
            runtimes: vec!["runc".to_owned(), "runsc".to_owned()],
        }
    }

    /// crun is refused on a hybrid host whose v2 hierarchy holds a controller, and taken
    /// where it holds none or the host is not hybrid.
    #[test]
    fn crun_is_refused_where_the_v2_hierarchy_holds_a_controller() {
        let dir = std::env::temp_dir().join(format!("codebox-cgroups-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("cgroup.controllers");
        assert!(crun_cgroups(&file).is_ok(), "not hybrid");
        std::fs::write(&file, "\n").unwrap();
        assert!(
            crun_cgroups(&file).is_ok(),
            "hybrid, every controller on v1"
        );
        std::fs::write(&file, "hugetlb\n").unwrap();
        let e = crun_cgroups(&file).unwrap_err().to_string();
        assert!(e.contains("holds controllers (hugetlb)"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A runtime Docker does not have is refused at start, naming those it has.
    #[test]
    fn a_runtime_docker_lacks_is_refused() {
        let d = daemon("runc", &[]);
        assert!(d.has_runtime("runc").is_ok());
        assert!(d.has_runtime("runsc").is_ok());
        let e = d.has_runtime("crun").unwrap_err().to_string();
        assert!(e.contains("no runtime crun (it has runc, runsc)"), "{e}");
    }

    /// Where the daemon makes its containers tighter than this engine would (another
    /// default runtime, user namespaces, SELinux, rootless, an operator's seccomp
    /// profile), the sandboxes stay with Docker.
    #[test]
    fn a_daemon_tighter_than_this_engine_keeps_the_sandboxes() {
        let debian = [
            "name=apparmor",
            "name=seccomp,profile=default",
            "name=cgroupns",
        ];
        assert!(same_as_dockers_default(&daemon("runc", &debian), Runtime::Runc).is_ok());
        assert!(same_as_dockers_default(&daemon("runsc", &debian), Runtime::Runc).is_err());
        assert!(same_as_dockers_default(&daemon("runsc", &debian), Runtime::Runsc).is_ok());
        assert!(same_as_dockers_default(&daemon("runc", &debian), Runtime::Crun).is_ok());
        assert!(same_as_dockers_default(&daemon("runsc", &debian), Runtime::Crun).is_err());
        for added in [
            "name=userns",
            "name=selinux",
            "name=rootless",
            "name=seccomp,profile=/etc/docker/custom.json",
        ] {
            assert!(
                same_as_dockers_default(&daemon("runc", &[added]), Runtime::Runc).is_err(),
                "{added}"
            );
        }
    }

    /// crun's binds: the image root's directories but those mounted over; symbolic links
    /// left as they are; anything else at the top refused, naming it.
    #[test]
    fn the_images_directories_are_listed_for_crun() {
        let root = std::env::temp_dir().join(format!("codebox-root-{}", uuid::Uuid::new_v4()));
        for dir in ["usr", "etc", "proc", "tmp", "opt"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        assert_eq!(root_dirs(&root).unwrap(), ["etc", "opt", "usr"]);
        std::fs::write(root.join("setuid-tool"), b"x").unwrap();
        let e = root_dirs(&root).unwrap_err().to_string();
        assert!(e.contains("/setuid-tool"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

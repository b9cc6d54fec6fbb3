//! The OCI runtime spec of a sandbox: what Docker would give the same container (see
//! the Docker engine's `container_config`), written out.

use codebox_agent::AGENT_PATH;
use serde_json::{Value, json};

use super::{OciEngine, Runtime};
use crate::sandbox::SandboxConfig;

/// The sandbox `id`'s cgroup, under each hierarchy (the spec's `cgroupsPath`).
pub(crate) fn cgroups_path(id: &str) -> String {
    format!("/codebox/{id}")
}

/// The spec of sandbox `id`.
pub(crate) fn spec(
    config: &SandboxConfig,
    oci: &OciEngine,
    id: &str,
    memory_mb: u32,
    uid: u32,
) -> Value {
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
            "oomScoreAdj": crate::sandbox::OOM_SCORE_ADJ,
        },
        // Read-only, nosuid and nodev by the host mount of the root ([`mount_root`]), which
        // runc's bind keeps; runc's own read-only remount would clear nosuid and nodev.
        // gVisor's Sentry mounts the root itself, read-only as asked. crun's bind drops
        // all three: its root is read-only as asked, and each of the image's directories
        // is bound again with the three flags (below).
        "root": {"path": oci.rootfs, "readonly": oci.runtime != Runtime::Runc},
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
            "cgroupsPath": cgroups_path(id),
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
                "pids": {"limit": oci.pids().0},
            },
            "namespaces": namespaces,
            "maskedPaths": crate::sandbox::proc_paths::masked(),
            "readonlyPaths": crate::sandbox::proc_paths::readonly(),
            "seccomp": oci.seccomp,
        },
    });
    if let Some(profile) = &oci.apparmor {
        spec["process"]["apparmorProfile"] = json!(profile);
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for dir in &oci.root_dirs {
            mounts.push(json!({
                "destination": format!("/{dir}"), "type": "bind",
                "source": oci.rootfs.join(dir), "options": ["bind", "ro", "nosuid", "nodev"],
            }));
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    use crate::sandbox::engine::runc::tests::engine as oci;

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
            crate::sandbox::proc_paths::masked(),
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
        let v2 = OciEngine {
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

    /// On gVisor the Sentry mounts the root (read-only as the spec asks), the cgroup's pids
    /// limit bounds the Sentry's threads, and the rest is the same spec.
    #[test]
    fn a_gvisor_sandbox_has_a_read_only_root_and_room_for_the_sentry() {
        let runsc = OciEngine {
            runtime: Runtime::Runsc,
            ..oci(true)
        };
        let s = spec(
            &SandboxConfig::default(),
            &runsc,
            "codebox-x",
            128,
            2_000_123,
        );
        assert_eq!(s["root"]["readonly"], true);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 1024);
        assert_eq!(
            runsc.pids(),
            (1024, Some(68)),
            "the program's own bound: RLIMIT_NPROC"
        );
        let runc = spec(
            &SandboxConfig::default(),
            &oci(true),
            "codebox-x",
            128,
            2_000_123,
        );
        assert_eq!(
            runc["root"]["readonly"], false,
            "the host mount's flags stand"
        );
        assert_eq!(runc["linux"]["resources"]["pids"]["limit"], 64);
        assert_eq!(s["process"], runc["process"]);
        assert_eq!(s["mounts"], runc["mounts"]);
        assert_eq!(s["linux"]["namespaces"], runc["linux"]["namespaces"]);
    }

    /// crun's sandbox: the runc spec, its root read-only and each of the image's
    /// directories bound again read-only, `nosuid` and `nodev` (crun's own bind of the root
    /// keeps neither flag of the host mount).
    #[test]
    fn a_crun_sandbox_binds_the_images_directories_nosuid_and_nodev() {
        let crun = OciEngine {
            runtime: Runtime::Crun,
            root_dirs: vec!["etc".into(), "usr".into()],
            ..oci(true)
        };
        let s = spec(
            &SandboxConfig::default(),
            &crun,
            "codebox-x",
            128,
            2_000_123,
        );
        let runc = spec(
            &SandboxConfig::default(),
            &oci(true),
            "codebox-x",
            128,
            2_000_123,
        );
        assert_eq!(s["root"]["readonly"], true);
        let mounts = s["mounts"].as_array().unwrap();
        let runc_mounts = runc["mounts"].as_array().unwrap();
        assert_eq!(mounts[..runc_mounts.len()], runc_mounts[..]);
        let binds: Vec<_> = mounts[runc_mounts.len()..].to_vec();
        assert_eq!(binds.len(), 2);
        for (bind, dir) in binds.iter().zip(["etc", "usr"]) {
            assert_eq!(bind["destination"], format!("/{dir}"));
            assert_eq!(bind["type"], "bind");
            assert_eq!(
                bind["source"],
                crun.rootfs.join(dir).to_string_lossy().as_ref()
            );
            assert_eq!(strings(&bind["options"]), ["bind", "ro", "nosuid", "nodev"]);
        }
        assert_eq!(s["process"], runc["process"]);
        assert_eq!(s["linux"], runc["linux"]);
    }
}

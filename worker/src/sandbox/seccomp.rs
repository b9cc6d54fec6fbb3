//! The seccomp policy of every sandbox, on every engine: made here once, handed to runc
//! as the bundle's `linux.seccomp` and to Docker as the container's seccomp profile (the
//! same JSON serves both).
//!
//! It starts from Docker's default profile as containers-common ships it (the same format),
//! resolved for this machine's architecture and kernel and for a process with no
//! capabilities, and is tighter than moby's current default on top:
//! - the native architecture alone: no 32-bit (`int $0x80`) or x32 entry, so no
//!   `socketcall` and none of another ABI's numbers;
//! - `socket` and `socketpair` for `AF_UNIX`, `AF_INET` and `AF_INET6` only (any other
//!   family, `AF_VSOCK` — a virtual machine's channel to its host — `AF_ALG`,
//!   `AF_PACKET`, `AF_KEY`, `AF_NETLINK` among them, gets `EAFNOSUPPORT`);
//! - namespaces, mounts, keyrings, BPF, perf, userfaultfd, io_uring, modules, kexec denied;
//!   `clone` without namespace flags; `clone3` `ENOSYS` so the C library uses `clone`;
//! - a profile whose default action would allow what it does not name is refused.

use serde_json::{Value, json};

/// Denied (EPERM) whatever the profile allows: what Docker's own default denies a
/// process without `CAP_SYS_ADMIN` (namespaces, mounts, keyrings, ...) and what a
/// program never needs and the kernel's attack surface grows with.
pub const DENIED: &[&str] = &[
    "unshare",
    "setns",
    "mount",
    "mount_setattr",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "move_mount",
    "open_tree",
    "name_to_handle_at",
    "open_by_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "quotactl",
    "quotactl_fd",
    "sethostname",
    "setdomainname",
    "syslog",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "lookup_dcookie",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
];

/// `clone` flags that make namespaces: a `clone` with any of them is denied, as
/// Docker does for a process without `CAP_SYS_ADMIN`.
pub const NAMESPACE_FLAGS: u64 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

const EPERM: u64 = 1;
const ENOSYS: u64 = 38;

fn arch_names() -> anyhow::Result<(&'static str, &'static str)> {
    match std::env::consts::ARCH {
        "aarch64" => Ok(("SCMP_ARCH_AARCH64", "arm64")),
        "x86_64" => Ok(("SCMP_ARCH_X86_64", "amd64")),
        other => anyhow::bail!("no seccomp policy for {other} (x86_64 and aarch64 only)"),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether kernel `release` (e.g. `6.1.0-18-amd64`) is at least `min` (`4.8`).
fn at_least(release: &str, min: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> {
        s.split(['.', '-'])
            .take(2)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(release) >= parse(min)
}

/// Socket families a program may open: local sockets and IP (inside a network namespace
/// with loopback only).
pub const FAMILIES: &[(u64, &str)] = &[(1, "AF_UNIX"), (2, "AF_INET"), (10, "AF_INET6")];

/// Calls whose rules the profile has no say in: the sandbox writes them itself.
const OWN_RULES: &[&str] = &["clone", "clone3", "socket", "socketpair", "socketcall"];

const EAFNOSUPPORT: u64 = 97;

/// Default actions that refuse what no rule names; anything else (`SCMP_ACT_ALLOW`,
/// `SCMP_ACT_LOG`, a notify or trace action) would let a new or unnamed call through.
const REFUSING: &[&str] = &[
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
];

/// Reads the profile at `path` and makes the policy for this machine.
pub async fn load(path: &str) -> anyhow::Result<Value> {
    let profile = tokio::fs::read(path).await.map_err(|e| {
        anyhow::anyhow!(
            "the seccomp profile {path} cannot be read ({e}); install Debian's `golang-github-containers-common` (`make docker`) or set CODEBOX_SECCOMP_PROFILE"
        )
    })?;
    let profile: Value = serde_json::from_slice(&profile)
        .map_err(|e| anyhow::anyhow!("the seccomp profile {path} is not JSON: {e}"))?;
    policy(&profile, &kernel_release())
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `socket`'s and `socketpair`'s rules: allowed for [`FAMILIES`] (the whole 64-bit
/// argument compared, so high bits cannot smuggle another family past), every other value
/// of the first argument `EAFNOSUPPORT`.
fn socket_rules() -> Vec<Value> {
    let names = ["socket", "socketpair"];
    let arg = |value: u64, op: &str| json!([{"index": 0, "value": value, "valueTwo": 0, "op": op}]);
    let mut rules: Vec<Value> = FAMILIES
        .iter()
        .map(|(family, _)| json!({"names": names, "action": "SCMP_ACT_ALLOW", "args": arg(*family, "SCMP_CMP_EQ")}))
        .collect();
    let highest = FAMILIES.iter().map(|(f, _)| *f).max().unwrap_or(0);
    let refused = (0..highest)
        .filter(|v| !FAMILIES.iter().any(|(f, _)| f == v))
        .map(|v| arg(v, "SCMP_CMP_EQ"))
        .chain(std::iter::once(arg(highest, "SCMP_CMP_GT")));
    rules.extend(refused.map(|args| {
        json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": EAFNOSUPPORT, "args": args})
    }));
    rules
}

/// The OCI `linux.seccomp` of `profile` (Docker's format) on kernel `release`; the same
/// JSON is a Docker seccomp profile.
pub fn policy(profile: &Value, release: &str) -> anyhow::Result<Value> {
    let default = profile["defaultAction"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the seccomp profile has no default action"))?;
    if !REFUSING.contains(&default) {
        anyhow::bail!(
            "the seccomp profile's default action is {default}: it would allow every call it does not name; use a profile that refuses by default"
        );
    }
    let (arch, goarch) = arch_names()?;
    let rules = profile["syscalls"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("the seccomp profile has no syscalls"))?;
    let mut syscalls = Vec::new();
    for rule in rules {
        let includes = &rule["includes"];
        let excludes = &rule["excludes"];
        // For a process with capabilities only: the sandbox has none.
        if !strings(&includes["caps"]).is_empty() {
            continue;
        }
        let only = strings(&includes["arches"]);
        if !only.is_empty() && !only.contains(&goarch) {
            continue;
        }
        if strings(&excludes["arches"]).contains(&goarch) {
            continue;
        }
        if let Some(min) = includes["minKernel"].as_str()
            && !at_least(release, min)
        {
            continue;
        }
        let action = rule["action"].as_str().unwrap_or("SCMP_ACT_ERRNO");
        let names: Vec<&str> = strings(&rule["names"])
            .into_iter()
            .filter(|n| !(DENIED.contains(n) || OWN_RULES.contains(n)))
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut out = json!({"names": names, "action": action});
        if let Some(args) = rule["args"].as_array().filter(|a| !a.is_empty()) {
            out["args"] = Value::Array(args.clone());
        }
        if let Some(errno) = rule["errnoRet"].as_u64() {
            out["errnoRet"] = json!(errno);
        }
        syscalls.push(out);
    }
    syscalls.push(json!({"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}));
    // A thread or a process, never a namespace (any other clone gets the default
    // action's error).
    syscalls.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }));
    // clone3 passes its flags in memory, where a filter cannot look: "not implemented"
    // makes the C library fall back to clone (as Docker does).
    syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    syscalls.extend(socket_rules());
    let mut policy = json!({
        "defaultAction": default,
        // The native ABI alone: a filter that also admits x86's 32-bit entry would have
        // to be written again for its numbers (and its `socketcall`).
        "architectures": [arch],
        "syscalls": syscalls,
    });
    if let Some(errno) = profile["defaultErrnoRet"].as_u64() {
        policy["defaultErrnoRet"] = json!(errno);
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn profile() -> Value {
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            ],
            "syscalls": [
                {"names": ["read", "write", "clone", "clone3", "unshare", "keyctl", "mount", "io_uring_setup"],
                 "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {}},
                {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "args": [],
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}, "excludes": {}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "args": [],
                 "includes": {"arches": ["amd64", "arm64"]}, "excludes": {}},
                {"names": ["s390_runtime_instr"], "action": "SCMP_ACT_ALLOW", "args": [],
                 "includes": {"arches": ["s390x"]}, "excludes": {}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "args": null,
                 "includes": {"minKernel": "99.0"}, "excludes": {}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                 "includes": {}, "excludes": {}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [],
                 "includes": {}, "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
            ],
        })
    }

    fn rules_for<'a>(policy: &'a Value, name: &str) -> Vec<&'a Value> {
        policy["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| strings(&r["names"]).contains(&name))
            .collect()
    }

    #[test]
    fn the_seccomp_policy_is_dockers_for_a_process_without_capabilities() {
        let policy = policy(&profile(), "6.1.0-18-amd64").unwrap();
        assert_eq!(policy["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(policy["defaultErrnoRet"], 38);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                policy["architectures"],
                json!(["SCMP_ARCH_X86_64"]),
                "the native ABI alone: no int $0x80, no x32"
            );
        }
        let allowed = |name: &str| {
            rules_for(&policy, name)
                .iter()
                .any(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        };
        assert!(allowed("read") && allowed("write") && allowed("arch_prctl"));
        assert!(!allowed("bpf"), "a rule for CAP_SYS_ADMIN only");
        assert!(!allowed("s390_runtime_instr"), "another architecture's");
        assert!(!allowed("ptrace"), "a newer kernel's");
        let personality = rules_for(&policy, "personality");
        assert_eq!(personality.len(), 1);
        assert_eq!(personality[0]["args"][0]["value"], 8, "conditions kept");
        // The sandbox's own denials, whatever the profile allows.
        for name in ["unshare", "keyctl", "mount", "io_uring_setup", "chroot"] {
            let rules = rules_for(&policy, name);
            assert_eq!(rules.len(), 1, "{name}: {rules:?}");
            assert_eq!(rules[0]["action"], "SCMP_ACT_ERRNO", "{name}");
            assert_eq!(rules[0]["errnoRet"], 1, "{name}: EPERM");
        }
        let clone = rules_for(&policy, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["action"], "SCMP_ACT_ALLOW");
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]),
            "a clone making a namespace is not allowed"
        );
        assert_eq!(NAMESPACE_FLAGS, 2_114_060_288, "Docker's mask");
        let clone3 = rules_for(&policy, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(
            clone3[0]["errnoRet"], 38,
            "ENOSYS: the C library falls back to clone"
        );
        let older = super::policy(&profile(), "100.1.0").unwrap();
        assert!(
            rules_for(&older, "ptrace")
                .iter()
                .any(|r| r["action"] == "SCMP_ACT_ALLOW")
        );
        assert!(
            super::policy(&json!({}), "6.1").is_err(),
            "no syscalls, no policy"
        );
    }

    /// Every socket family but three is refused, whatever the profile allowed, and the
    /// whole argument is compared (a family with high bits set is no family at all).
    #[test]
    fn sockets_are_local_or_ip_only() {
        let mut p = profile();
        p["syscalls"].as_array_mut().unwrap().push(json!(
            {"names": ["socket", "socketpair", "socketcall"], "action": "SCMP_ACT_ALLOW",
             "args": [], "includes": {}, "excludes": {}}));
        let policy = policy(&p, "6.1.0").unwrap();
        assert!(rules_for(&policy, "socketcall").is_empty(), "no socketcall");
        for name in ["socket", "socketpair"] {
            let rules = rules_for(&policy, name);
            let verdict = |family: u64| -> Option<&str> {
                let hits: Vec<&str> = rules
                    .iter()
                    .filter(|r| {
                        let a = &r["args"][0];
                        assert_eq!(a["index"], 0, "{name}: the family");
                        let v = a["value"].as_u64().unwrap();
                        match a["op"].as_str().unwrap() {
                            "SCMP_CMP_EQ" => family == v,
                            "SCMP_CMP_GT" => family > v,
                            op => panic!("{name}: {op}"),
                        }
                    })
                    .map(|r| r["action"].as_str().unwrap())
                    .collect();
                assert!(hits.len() <= 1, "{name} {family}: {hits:?}");
                hits.first().copied()
            };
            for (family, label) in FAMILIES {
                assert_eq!(verdict(*family), Some("SCMP_ACT_ALLOW"), "{name} {label}");
            }
            // AF_UNSPEC, AF_AX25, AF_IPX, AF_APPLETALK, AF_KEY, AF_NETLINK, AF_PACKET,
            // AF_ALG, AF_VSOCK, the highest there is, and AF_UNIX with high bits set.
            for family in [0, 3, 4, 5, 15, 16, 17, 38, 40, 45, 1 << 32 | 1] {
                assert_eq!(verdict(family), Some("SCMP_ACT_ERRNO"), "{name} {family}");
            }
            assert!(
                rules
                    .iter()
                    .filter(|r| r["action"] == "SCMP_ACT_ERRNO")
                    .all(|r| r["errnoRet"] == 97),
                "EAFNOSUPPORT"
            );
            assert!(
                rules.iter().all(|r| r.get("args").is_some()),
                "{name}: unconditional rule"
            );
        }
    }

    /// A profile that allows what it does not name is no policy.
    #[test]
    fn a_profile_that_allows_by_default_is_refused() {
        for action in [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
        ] {
            let mut p = profile();
            p["defaultAction"] = json!(action);
            let e = policy(&p, "6.1.0").unwrap_err().to_string();
            assert!(e.contains(action), "{e}");
        }
        let mut p = profile();
        p.as_object_mut().unwrap().remove("defaultAction");
        assert!(policy(&p, "6.1.0").is_err());
        for action in REFUSING {
            let mut p = profile();
            p["defaultAction"] = json!(action);
            assert_eq!(policy(&p, "6.1.0").unwrap()["defaultAction"], *action);
        }
    }
}

//! The host's account of a sandbox: its cgroup read from the host, where no program in
//! the sandbox can hide anything. On runc the agent reads the same cgroup from inside; on
//! gVisor the Sentry keeps its tasks' accounts itself, and a child that ended with nobody
//! waiting for it left none there (two such children burned 2 s and 300 MB that the run
//! reported as 90 ms and 15 MB) — the host saw the Sentry do that work. A step's facts are
//! the larger of the agent's and the host's.
//!
//! CPU: the cgroup's usage (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`) between the
//! step's start and its end. Memory: the cgroup's high-water mark during the step, less
//! what it held when the step started (v1 `memory.max_usage_in_bytes`, reset at the start;
//! v2 `memory.peak`, the sandbox's own since its start), so a warm sandbox's boot and the
//! Sentry's own base are not the program's.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the hierarchies are mounted on the host.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What the host counted during a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Duration,
    pub memory_kb: u64,
}

/// A step's account, opened at its start.
#[derive(Debug)]
pub struct Account {
    cpu: CpuFile,
    cpu_start_us: u64,
    memory: MemoryFiles,
    memory_start: u64,
}

#[derive(Debug)]
enum CpuFile {
    /// v1 `cpuacct.usage`, in ns.
    Nanos(PathBuf),
    /// v2 `cpu.stat`, whose `usage_usec` line counts µs.
    Stat(PathBuf),
}

#[derive(Debug)]
struct MemoryFiles {
    /// v1 `memory.max_usage_in_bytes` / v2 `memory.peak`.
    peak: PathBuf,
    /// v1 `memory.usage_in_bytes` / v2 `memory.current`.
    current: PathBuf,
}

impl Account {
    /// Opens the account of the cgroup at `path` (relative to each hierarchy, as in an
    /// OCI spec's `cgroupsPath`); `None` where the host has no such cgroup (not this
    /// engine's, or gone).
    pub fn open(path: &str) -> Option<Self> {
        Self::open_in(Path::new(CGROUP_ROOT), path)
    }

    fn open_in(root: &Path, path: &str) -> Option<Self> {
        let path = path.trim_start_matches('/');
        let unified = root.join(path);
        let (cpu, memory) = if unified.join("cpu.stat").exists() {
            (
                CpuFile::Stat(unified.join("cpu.stat")),
                MemoryFiles {
                    peak: unified.join("memory.peak"),
                    current: unified.join("memory.current"),
                },
            )
        } else {
            let cpuacct = ["cpuacct", "cpu,cpuacct"]
                .iter()
                .map(|h| root.join(h).join(path).join("cpuacct.usage"))
                .find(|f| f.exists())?;
            let memory = root.join("memory").join(path);
            // The mark starts again from what the cgroup holds now.
            let _ = fs::write(memory.join("memory.max_usage_in_bytes"), "0");
            (
                CpuFile::Nanos(cpuacct),
                MemoryFiles {
                    peak: memory.join("memory.max_usage_in_bytes"),
                    current: memory.join("memory.usage_in_bytes"),
                },
            )
        };
        Some(Self {
            cpu_start_us: cpu.read_us()?,
            memory_start: read_number(&memory.current)?,
            cpu,
            memory,
        })
    }

    /// What the cgroup counted since the account was opened; `None` once it is gone.
    pub fn usage(&self) -> Option<Usage> {
        let cpu_us = self.cpu.read_us()?.saturating_sub(self.cpu_start_us);
        let peak = read_number(&self.memory.peak)?;
        Some(Usage {
            cpu: Duration::from_micros(cpu_us),
            memory_kb: peak.saturating_sub(self.memory_start) / 1024,
        })
    }
}

impl CpuFile {
    fn read_us(&self) -> Option<u64> {
        match self {
            CpuFile::Nanos(file) => read_number(file).map(|ns| ns / 1000),
            CpuFile::Stat(file) => fs::read_to_string(file).ok()?.lines().find_map(|l| {
                l.strip_prefix("usage_usec ")
                    .and_then(|n| n.trim().parse().ok())
            }),
        }
    }
}

fn read_number(file: &Path) -> Option<u64> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A directory of its own standing in for the hierarchies' root.
    struct Root(PathBuf);

    impl Root {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!("codebox-cgroups-{}", uuid::Uuid::new_v4())))
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(dir: &Path, name: &str, value: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), value).unwrap();
    }

    /// v1: CPU from `cpuacct.usage` between open and read; memory the mark (reset at the
    /// open) less what the cgroup held then.
    #[test]
    fn v1_counts_the_step_alone() {
        let root = Root::new();
        let cpu = root.path().join("cpu,cpuacct/codebox/x");
        let memory = root.path().join("memory/codebox/x");
        write(&cpu, "cpuacct.usage", "75000000\n");
        write(&memory, "memory.usage_in_bytes", "12582912\n");
        write(&memory, "memory.max_usage_in_bytes", "15728640\n");
        let account = Account::open_in(root.path(), "/codebox/x").unwrap();
        assert_eq!(
            fs::read_to_string(memory.join("memory.max_usage_in_bytes")).unwrap(),
            "0",
            "the mark is reset"
        );
        write(&cpu, "cpuacct.usage", "2075000000\n");
        write(&memory, "memory.max_usage_in_bytes", "327155712\n");
        assert_eq!(
            account.usage(),
            Some(Usage {
                cpu: Duration::from_secs(2),
                memory_kb: (327_155_712 - 12_582_912) / 1024,
            })
        );
        fs::remove_dir_all(&cpu).unwrap();
        assert_eq!(account.usage(), None, "a cgroup gone tells nothing");
    }

    /// v2: `cpu.stat`'s `usage_usec` and `memory.peak`.
    #[test]
    fn v2_reads_the_unified_files() {
        let root = Root::new();
        let cg = root.path().join("codebox/y");
        write(
            &cg,
            "cpu.stat",
            "usage_usec 1000\nuser_usec 800\nsystem_usec 200\n",
        );
        write(&cg, "memory.current", "1048576\n");
        write(&cg, "memory.peak", "2097152\n");
        let account = Account::open_in(root.path(), "/codebox/y").unwrap();
        write(
            &cg,
            "cpu.stat",
            "usage_usec 501000\nuser_usec 1\nsystem_usec 1\n",
        );
        write(&cg, "memory.peak", "5242880\n");
        assert_eq!(
            account.usage(),
            Some(Usage {
                cpu: Duration::from_millis(500),
                memory_kb: 4096,
            })
        );
    }

    #[test]
    fn no_cgroup_no_account() {
        let root = Root::new();
        assert!(Account::open_in(root.path(), "/codebox/none").is_none());
    }
}

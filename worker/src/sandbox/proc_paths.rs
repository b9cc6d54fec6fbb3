//! The kernel files a sandbox does not see (masked: an empty file or directory in their
//! place) or cannot write (read-only), the same on every engine: moby's current default
//! lists, which Debian 12's Docker 20.10 predates (it lacks `/proc/interrupts`, powercap and
//! the CPUs' `thermal_throttle`, which tell one tenant about the host and, through power
//! readings, about another tenant's work).

/// Masked paths of every sandbox (see [`masked`] for the per-CPU ones added).
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Read-only paths of every sandbox.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The masked paths: [`MASKED`] and each of this host's CPUs' `thermal_throttle`
/// directory (as moby lists them; a path the host lacks is skipped by every engine).
pub fn masked() -> Vec<String> {
    let mut paths: Vec<String> = MASKED.iter().map(|p| (*p).to_owned()).collect();
    if let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut throttles: Vec<String> = cpus
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.strip_prefix("cpu")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|e| e.path().join("thermal_throttle"))
            .filter(|p| p.exists())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        throttles.sort();
        paths.extend(throttles);
    }
    paths
}

/// The read-only paths, owned.
pub fn readonly() -> Vec<String> {
    READONLY.iter().map(|p| (*p).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moby_s_current_lists_at_least() {
        let masked = masked();
        for path in [
            "/proc/interrupts",
            "/proc/kcore",
            "/proc/keys",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
        ] {
            assert!(masked.iter().any(|p| p == path), "{path} masked");
        }
        assert!(
            masked
                .iter()
                .skip(MASKED.len())
                .all(|p| p.ends_with("/thermal_throttle"))
        );
        assert_eq!(
            readonly(),
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        );
    }
}

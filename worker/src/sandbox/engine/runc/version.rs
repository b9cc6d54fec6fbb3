//! The oldest runc the runc engine runs: one with the fixes for the escapes a program
//! inside a sandbox could attempt on its own.
//!
//! - CVE-2019-5736: a container process overwrites the host's runc through
//!   `/proc/self/exe` (fixed in 1.0.0-rc7);
//! - CVE-2024-21626 ("Leaky Vessels"): a file descriptor of the host leaked into the
//!   container's first process lets it reach the host's filesystem (fixed in 1.1.12).
//!
//! Debian backports fixes without changing the upstream number: its 12 ("bookworm")
//! security update `1.1.5+ds1-1+deb12u1` carries the CVE-2024-21626 fix (its changelog
//! says so), and is accepted. The escapes of November 2025 (CVE-2025-31133, -52565,
//! -52881) need a container image or mounts the attacker controls; the runner image and
//! every mount here are the worker's own.

/// The first upstream release with every fix above.
const MINIMUM: (u32, u32, u32) = (1, 1, 12);
/// Debian 12's runc release whose security revisions carry the fixes.
const DEBIAN_12_BUILD: &str = "1.1.5+ds1-1+deb12u";

/// Whether `runc --version`'s output names a runc with the fixes; the error says which.
pub fn check(output: &str) -> Result<(), String> {
    let version = output
        .lines()
        .find_map(|l| l.strip_prefix("runc version "))
        .map(str::trim)
        .ok_or_else(|| format!("runc did not say its version: {:?}", output.trim()))?;
    if upstream(version).is_some_and(|v| v >= MINIMUM) {
        return Ok(());
    }
    let build = output
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .map(str::trim)
        .unwrap_or_default();
    let debian_revision = build
        .strip_prefix(DEBIAN_12_BUILD)
        .and_then(|n| n.parse::<u32>().ok());
    if debian_revision.is_some_and(|n| n >= 1) {
        return Ok(());
    }
    Err(format!(
        "runc {version} ({build}) lacks the fix for CVE-2024-21626; install runc 1.1.12 or later (Debian 12: 1.1.5+ds1-1+deb12u1 or later)"
    ))
}

/// `1.1.12`, `1.2.0-rc.1`, `1.1.5+ds1` → its numbers (a pre-release counts as below its
/// release).
fn upstream(version: &str) -> Option<(u32, u32, u32)> {
    let core = version.split(['+', '~']).next()?;
    let (numbers, pre) = match core.split_once('-') {
        Some((n, _)) => (n, true),
        None => (core, false),
    };
    let mut parts = numbers.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    if pre {
        // 1.2.0-rc.1 is older than 1.2.0, and newer than every 1.1.x.
        return Some(if patch > 0 {
            (major, minor, patch - 1)
        } else if minor > 0 {
            (major, minor - 1, u32::MAX)
        } else {
            (major.saturating_sub(1), u32::MAX, u32::MAX)
        });
    }
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(version: &str, commit: &str) -> String {
        format!("runc version {version}\ncommit: {commit}\nspec: 1.0.2-dev\ngo: go1.19.8\n")
    }

    #[test]
    fn runc_with_the_fixes_is_accepted() {
        for (version, commit) in [
            ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1"),
            ("1.1.5+ds1", "1.1.5+ds1-1+deb12u2"),
            ("1.1.12", "v1.1.12-0-g51d5e946"),
            ("1.1.15", "v1.1.15-0-gbc20cb44"),
            ("1.2.0", "v1.2.0-0-g0b9fa21b"),
            ("1.3.3", "v1.3.3-0-gd842d771"),
            ("2.0.0-rc.1", "x"),
        ] {
            assert_eq!(
                check(&output(version, commit)),
                Ok(()),
                "{version} {commit}"
            );
        }
    }

    #[test]
    fn runc_without_them_is_refused_naming_the_cve() {
        for (version, commit) in [
            ("1.1.5+ds1", "1.1.5+ds1-1"),
            ("1.1.11", "v1.1.11-0-g4bccb38c"),
            ("1.1.12-rc.1", "x"),
            ("1.0.0-rc6", "x"),
            ("1.1.4+ds1", "1.1.4+ds1-1+deb12u1"),
        ] {
            let e = check(&output(version, commit)).unwrap_err();
            assert!(e.contains("CVE-2024-21626"), "{e}");
        }
        assert!(check("").is_err());
        assert!(check("runc version banana\n").is_err());
    }
}

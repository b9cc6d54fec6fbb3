//! The oldest runc (and crun) the OCI engine runs: one with the fixes for the escapes a
//! program inside a sandbox could attempt on its own.
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

//! crun: CVE-2019-5736 is fixed since 2019 the way runc fixed it; CVE-2022-27650 (a
//! container process started with inheritable capabilities, which a file with inheritable
//! capabilities could raise) in 1.4.4; CVE-2024-21626 and the runc escapes of November
//! 2025 do not reach it (its maintainers tried their reproducers); CVE-2025-24965 is its
//! krun handler's, never used here; CVE-2026-88264/-88265 need a container without a
//! `/dev` of its own, and every sandbox mounts one. Debian 12's crun is 1.8.1.

/// The first upstream release with every fix above.
const MINIMUM: (u32, u32, u32) = (1, 1, 12);
/// Debian 12's runc release whose security revisions carry the fixes.
const DEBIAN_12_BUILD: &str = "1.1.5+ds1-1+deb12u";

/// Whether `runc --version`'s output names a runc with the fixes; the error says which.
pub fn check(output: &str) -> Result<(), String> {
    let version = said_version("runc", output)?;
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

/// The first crun release with every fix above.
const CRUN_MINIMUM: (u32, u32, u32) = (1, 4, 4);

/// Whether `crun --version`'s output names a crun with the fixes; the error says which.
pub fn check_crun(output: &str) -> Result<(), String> {
    let version = said_version("crun", output)?;
    match upstream(version) {
        Some(v) if v >= CRUN_MINIMUM => Ok(()),
        _ => Err(format!(
            "crun {version} lacks the fix for CVE-2022-27650; install crun 1.4.4 or later (Debian 12: 1.8.1)"
        )),
    }
}

/// The version `<runtime> --version` says on its `<runtime> version X` line.
fn said_version<'a>(runtime: &str, output: &'a str) -> Result<&'a str, String> {
    let line = format!("{runtime} version ");
    output
        .lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map(str::trim)
        .ok_or_else(|| format!("{runtime} did not say its version: {:?}", output.trim()))
}

/// `1.1.12`, `1.2.0-rc.1`, `1.1.5+ds1`, `1.25` → its numbers (a pre-release counts as below its
/// release).
fn upstream(version: &str) -> Option<(u32, u32, u32)> {
    let core = version.split(['+', '~']).next()?;
    let (numbers, pre) = match core.split_once('-') {
        Some((n, _)) => (n, true),
        None => (core, false),
    };
    let mut parts = numbers.split('.').map(|p| p.parse::<u32>().ok());
    // crun names some releases by two numbers (1.25).
    let (major, minor, patch) = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
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

    #[test]
    fn crun_is_held_to_its_own_fixes() {
        let said =
            |v: &str| format!("crun version {v}\ncommit: x\nrundir: /run/crun\nspec: 1.0.0\n");
        for v in ["1.8.1", "1.4.4", "1.14.1", "1.25"] {
            assert_eq!(check_crun(&said(v)).map_err(|e| (v, e)), Ok(()));
        }
        for v in ["1.4.3", "1.4", "0.21", "1.4.4-rc.1"] {
            let e = check_crun(&said(v)).unwrap_err();
            assert!(e.contains("CVE-2022-27650"), "{v}: {e}");
        }
        assert!(check_crun("runc version 1.1.12\n").is_err());
    }
}

//! The worker binary refuses settings outside their ranges at start, with one line naming
//! the variable: `0` means "unlimited" to the container engine for several of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn settings_out_of_range_stop_the_worker_with_one_line() {
    for (var, value) in [
        ("CODEBOX_SANDBOX_PIDS", "0"),
        ("CODEBOX_SANDBOX_PIDS", "-1"),
        ("CODEBOX_SANDBOX_CPUS", "0"),
        ("CODEBOX_SANDBOX_CPUS", "NaN"),
        ("CODEBOX_SANDBOX_TMPFS_MB", "0"),
        ("CODEBOX_SANDBOX_REAP_AFTER_SECS", "0"),
        ("WORKER_CONCURRENCY", "0"),
        ("WORKER_CONCURRENCY", "1000"),
        ("MAX_DELIVERIES", "0"),
        ("CODEBOX_SANDBOX_UIDS", "0-70000"),
        ("CODEBOX_SANDBOX_UIDS", "60000-70000"),
        ("CODEBOX_SANDBOX_UIDS", "3000000"),
        ("WORKER_API_WAIT_SECS", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_codebox-worker"))
            .env_clear()
            .env("API_URL", "http://127.0.0.1:9")
            .env("WORKER_TOKEN", "t")
            // Unreachable: a setting let through would fail later, on another line.
            .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:9/%2f")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("codebox-worker: ") && last.contains(var),
            "{var}={value}: {stderr}"
        );
    }
}

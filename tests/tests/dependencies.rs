//! What each service binary links, read from Cargo's own resolution (`cargo tree`): the
//! embedded process none of the backends it does not use (no AWS SDK, no RabbitMQ,
//! PostgreSQL or Redis client), the Lambda functions only the AWS ones, and no service
//! binary the ports' conformance suites, which are test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The packages (and `<package> feature "<name>"` lines) `package` pulls in with
/// `features`, for normal builds.
fn tree(package: &str, features: &[&str]) -> Vec<String> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["tree", "--offline", "-p", package, "-e", "normal,features"])
        .args(["--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        cargo.args(["--no-default-features", "--features", &features.join(",")]);
    }
    let out = cargo.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches(" (*)").to_owned())
        .collect()
}

fn links(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

const BACKENDS: [&str; 5] = ["aws-sdk-", "aws-config ", "lapin ", "sqlx ", "redis "];
const CONFORMANCE: &str = "codebox-core feature \"conformance\"";

#[test]
fn the_embedded_process_links_only_what_it_runs() {
    let embedded = tree("codebox-embedded", &[]);
    assert!(links(&embedded, "codebox-worker "), "the tree was read");
    for backend in BACKENDS {
        assert!(
            !links(&embedded, backend),
            "the embedded process links {backend}"
        );
    }
    assert!(
        !links(&embedded, CONFORMANCE),
        "the embedded process links the conformance suites"
    );
}

#[test]
fn the_standalone_services_link_their_backends_and_no_test_code() {
    let worker = tree("codebox-worker", &[]);
    for backend in ["lapin ", "aws-sdk-sqs ", "aws-sdk-s3 "] {
        assert!(links(&worker, backend), "the worker binary lacks {backend}");
    }
    let gateway = tree("codebox-functions", &[]);
    for backend in ["lapin ", "sqlx ", "redis ", "aws-sdk-dynamodb "] {
        assert!(links(&gateway, backend), "the gateway lacks {backend}");
    }
    // The Lambda functions' build (`make lambda-build`): the AWS SDK alone.
    let lambda = tree("codebox-functions", &["aws"]);
    assert!(links(&lambda, "aws-sdk-dynamodb "));
    for backend in ["lapin ", "sqlx ", "redis "] {
        assert!(
            !links(&lambda, backend),
            "the Lambda functions link {backend}"
        );
    }
    for lines in [&worker, &gateway, &lambda] {
        assert!(
            !links(lines, CONFORMANCE),
            "a service links the conformance suites"
        );
    }
}

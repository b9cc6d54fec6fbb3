//! What each service binary links, read from Cargo's own resolution (`cargo tree`): the
//! embedded process none of the backends it does not use (no AWS SDK, no RabbitMQ,
//! PostgreSQL or Redis client), the Lambda functions only the AWS ones, and no service
//! binary the ports' conformance suites, which are test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The packages (and `<package> feature "<name>"` lines) `package` pulls in with
/// `features`, for normal builds.
fn tree(package: &str, features: &[&str]) -> Vec<String> {
    tree_of(package, features, &["-e", "normal,features"])
}

/// What of `dependency`, features included, `package` uses with `features`.
fn used_of(package: &str, features: &[&str], dependency: &str) -> Vec<String> {
    tree_of(
        package,
        features,
        &["-e", "normal,features", "-i", dependency],
    )
}

fn tree_of(package: &str, features: &[&str], how: &[&str]) -> Vec<String> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["tree", "--offline", "-p", package])
        .args(how)
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
    // The Lambda functions' build, with the features `make lambda-build` names: the AWS
    // SDK alone, configured from the environment Lambda sets.
    let lambda = tree("codebox-functions", &[&lambda_build_features()]);
    assert!(links(&lambda, "aws-sdk-dynamodb "));
    const ENVIRONMENT_ONLY: &str = "codebox-adapters feature \"lambda-environment\"";
    let adapters = used_of(
        "codebox-functions",
        &[&lambda_build_features()],
        "codebox-adapters",
    );
    assert!(
        links(&adapters, ENVIRONMENT_ONLY),
        "the Lambda functions link the SDK's whole default chain"
    );
    let adapters = used_of("codebox-functions", &[], "codebox-adapters");
    assert!(
        links(&adapters, "codebox-adapters feature \"aws\""),
        "the tree was read"
    );
    assert!(
        !links(&adapters, ENVIRONMENT_ONLY),
        "the gateway reads only Lambda's variables"
    );
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

/// The features the Makefile's `lambda-build` builds the functions with.
fn lambda_build_features() -> String {
    let makefile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Makefile"))
        .expect("the Makefile is readable");
    let recipe = makefile
        .split("\nlambda-build:")
        .nth(1)
        .expect("the Makefile has lambda-build");
    let recipe = recipe.split("\n\n").next().unwrap_or_default();
    let words: Vec<&str> = recipe.split_whitespace().collect();
    assert!(
        words.contains(&"--no-default-features"),
        "lambda-build builds without the default features: {recipe}"
    );
    let at = words
        .iter()
        .position(|w| *w == "--features")
        .expect("lambda-build names its features");
    words[at + 1].to_owned()
}

//! The AWS template validates offline with cfn-lint (any error or warning fails), declares
//! a route for every handler of the gateway, and has what a production stack needs
//! (`tests/infra/check_template.py`: the architecture agrees with the build, least
//! privilege, retained state, scaling and rollback, throttling, alarms, a dashboard, images
//! of the stack's architecture), and the images' cross-compiling script builds for arm64.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

/// Runs a checker; it passes when the checker exits 0, else its output is the failure.
fn passes(mut cmd: Command, what: &str, install: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} ({install})"));
    assert!(
        out.status.success(),
        "{what} found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cfn_lint_passes() {
    let mut cmd = Command::new("cfn-lint");
    cmd.arg(template());
    passes(cmd, "cfn-lint", "scripts/ensure-tools.sh installs it");
}

/// `sam validate --lint`: the SAM transform and cfn-lint as the SAM CLI runs them (offline;
/// the pinned CLI in the virtualenv scripts/ensure-tools.sh keeps, asked of the script
/// itself, so the test and `make deploy` find the same one).
#[test]
fn sam_validate_lint_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("scripts/ensure-tools.sh"))
        .arg("sam")
        .output()
        .expect("bash runs scripts/ensure-tools.sh");
    assert!(
        out.status.success(),
        "scripts/ensure-tools.sh sam: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sam = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("sam");
    let mut cmd = Command::new(&sam);
    cmd.args(["validate", "--lint", "--template"])
        .arg(template())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1");
    passes(
        cmd,
        "sam validate --lint",
        "scripts/ensure-tools.sh installs it",
    );
}

/// Each check of `tests/infra/check_template.py` was seen to fail with its protection
/// removed from a copy of the template (or the Makefile).
#[test]
fn the_template_is_ready_for_production() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("tests/infra/check_template.py"))
        .arg(template())
        .arg(root.join("Makefile"));
    passes(
        cmd,
        "the production checks",
        "python3 with cfn-lint: scripts/ensure-tools.sh",
    );
}

#[test]
fn every_api_route_has_a_function() {
    let text = std::fs::read_to_string(template()).unwrap();
    let doc = codebox_functions::openapi::ApiDoc::openapi_json();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        // Uploads on AWS go to S3's presigned URLs; the API takes them only where the
        // blob store signs no URLs.
        if path == "/task/upload/{grant}" {
            assert!(!text.contains("Path: /task/upload/{grant}"));
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let route = format!(
                "Method: {}\n            Path: {path}",
                method.to_uppercase()
            );
            assert!(
                text.contains(&route),
                "no function serves {} {path}",
                method.to_uppercase()
            );
        }
    }
    for name in [
        "register",
        "login",
        "logout",
        "create-task",
        "get-status",
        "get-result",
        "get-task",
        "list-tasks",
        "cancel-task",
        "commit",
        "languages",
        "health",
        "judge0",
        "sweep",
        "webhook-key",
        "webhooks",
    ] {
        assert!(
            text.contains(&format!("CodeUri: ../target/lambda/{name}/")),
            "{name}"
        );
    }
}

/// The tables the template deploys and the ones the LocalStack init hook makes (and every
/// AWS test runs on) have the same keys, indexes and TTL attributes; the queues the same
/// redrive and visibility.
#[test]
fn the_template_and_the_localstack_hook_make_the_same_resources() {
    let aws = codebox_tests::aws::StandIn::provision(60, 3);
    let check = r#"
import json, os, sys
import boto3
from cfnlint.decode import decode
template, _ = decode(sys.argv[1])
env = json.loads(sys.argv[2])
kw = dict(endpoint_url=sys.argv[3], region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
ddb = boto3.client("dynamodb", **kw)
problems = []
for logical, var in [("UsersTable", "USERS_TABLE"), ("TasksTable", "TASKS_TABLE"),
                     ("SessionsTable", "SESSIONS_TABLE"), ("IdempotencyTable", "IDEMPOTENCY_TABLE"),
                     ("LimitsTable", "LIMITS_TABLE")]:
    want = template["Resources"][logical]["Properties"]
    got = ddb.describe_table(TableName=env[var])["Table"]
    keys = lambda ks: [(k["AttributeName"], k["KeyType"]) for k in ks]
    if keys(want["KeySchema"]) != keys(got["KeySchema"]):
        problems.append(f"{logical}: keys {want['KeySchema']} vs {got['KeySchema']}")
    gsis = lambda g: sorted((i["IndexName"], tuple(keys(i["KeySchema"]))) for i in g or [])
    if gsis(want.get("GlobalSecondaryIndexes")) != gsis(got.get("GlobalSecondaryIndexes")):
        problems.append(f"{logical}: indexes differ")
    attrs = lambda a: sorted((x["AttributeName"], x["AttributeType"]) for x in a)
    if attrs(want["AttributeDefinitions"]) != attrs(got["AttributeDefinitions"]):
        problems.append(f"{logical}: attribute definitions differ")
    ttl = ddb.describe_time_to_live(TableName=env[var])["TimeToLiveDescription"]
    want_ttl = want.get("TimeToLiveSpecification", {}).get("AttributeName")
    if want_ttl != ttl.get("AttributeName"):
        problems.append(f"{logical}: TTL {want_ttl} vs {ttl.get('AttributeName')}")
sqs = boto3.client("sqs", **kw)
want = template["Resources"]["TaskQueue"]["Properties"]
got = sqs.get_queue_attributes(QueueUrl=env["TASK_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
if int(json.loads(got["RedrivePolicy"])["maxReceiveCount"]) != int(want["RedrivePolicy"]["maxReceiveCount"]):
    problems.append("TaskQueue: maxReceiveCount differs")
for logical, var in [("WebhookQueue", "WEBHOOK_QUEUE_URL")]:
    want = template["Resources"][logical]["Properties"]
    got = sqs.get_queue_attributes(QueueUrl=env[var], AttributeNames=["All"])["Attributes"]
    for attr in ("VisibilityTimeout", "MessageRetentionPeriod"):
        if int(got[attr]) != int(want[attr]):
            problems.append(f"{logical}: {attr} {want[attr]} vs {got[attr]}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;
    let env = serde_json::to_string(&aws.env).unwrap();
    let out = Command::new("python3")
        .args(["-c", check])
        .arg(template())
        .arg(env)
        .arg(&aws.endpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "template and hook disagree:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The images' Rust stages cross-compile with `scripts/cross-build.sh` (`make images`):
/// the sandbox agent built for arm64 on this machine is a static aarch64 binary (the
/// script checks the ELF machine and fails otherwise), and an unknown architecture is
/// refused with one line. Built in a target directory of its own: the suite's is held by
/// the cargo running it.
#[test]
fn the_agent_cross_builds_for_arm64() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/cross");
    let out = target.join("out/codebox-agent");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/cross-build.sh"))
        .args(["arm64", "codebox-agent", "codebox-agent"])
        .arg(&out)
        .arg("--static")
        .env("CARGO_TARGET_DIR", &target);
    passes(
        cmd,
        "scripts/cross-build.sh arm64",
        "as root it installs Debian's cross compiler",
    );
    let elf = std::fs::read(&out).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 0xb7, "EM_AARCH64");
    // Statically linked: no program interpreter (PT_INTERP, type 3) among its headers.
    let (phoff, phentsize, phnum) = (
        u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize,
        u16::from_le_bytes([elf[54], elf[55]]) as usize,
        u16::from_le_bytes([elf[56], elf[57]]) as usize,
    );
    let interp = (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    });
    assert!(!interp, "the agent must be static: it runs on any libc");

    let refused = Command::new("bash")
        .arg(root.join("scripts/cross-build.sh"))
        .args(["mips", "codebox-agent", "codebox-agent"])
        .arg(target.join("out/never"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "cross-build: ARCH must be arm64 or amd64, not 'mips'"
    );
}

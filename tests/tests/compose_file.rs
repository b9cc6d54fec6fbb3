//! `docker-compose.yml` is valid for Debian's docker-compose, has every service with its
//! health-gated start order, and the dashboard charts the metrics the code emits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The lines of one service in `docker-compose config` output (up to the next key at the
/// services' indentation).
fn service_body(text: &str, service: &str) -> String {
    let header = format!("  {service}:");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compose_file_is_valid() {
    let out = Command::new("docker-compose")
        .current_dir(root())
        .args([
            "-f",
            "docker-compose.yml",
            "--env-file",
            ".env.example",
            "config",
        ])
        .output()
        .expect("docker-compose must be installed (scripts/services.sh up installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker-compose config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in [
        "postgres",
        "redis",
        "rabbitmq",
        "gateway",
        "worker",
        "prometheus",
        "grafana",
        "localstack",
        "aws-gateway",
        "aws-worker",
    ] {
        assert!(
            text.contains(&format!("\n  {service}:\n")),
            "service {service} missing:\n{text}"
        );
    }
    assert!(text.contains("condition: service_healthy"));
    assert!(
        text.contains("/var/run/docker.sock"),
        "workers need the engine's socket"
    );
    let worker = service_body(&text, "worker");
    assert!(worker.contains("WORKER_TOKEN"), "{worker}");
    assert!(
        !worker.contains("DATABASE_URL"),
        "workers hold no database credentials"
    );
    // A worker drains on SIGTERM: the longest task (15 s compile + 20 s run) must fit.
    for service in ["worker", "aws-worker"] {
        let body = service_body(&text, service);
        assert!(body.contains("stop_signal: SIGTERM"), "{service}");
        assert!(
            body.contains("stop_grace_period: 1m30s") || body.contains("stop_grace_period: 90s"),
            "{service} has no 90 s grace period:\n{body}"
        );
    }
    for dockerfile in ["worker/Dockerfile", "functions/Dockerfile"] {
        let text = std::fs::read_to_string(root().join(dockerfile)).unwrap();
        assert!(text.contains("STOPSIGNAL SIGTERM"), "{dockerfile}");
    }
    // The worker image verifies HTTPS (its API, SQS, S3): it carries a CA bundle.
    let worker = std::fs::read_to_string(root().join("worker/Dockerfile")).unwrap();
    let last_stage = worker.rsplit("\nFROM ").next().unwrap_or_default();
    assert!(
        last_stage.contains("/etc/ssl/certs/ca-certificates.crt"),
        "the worker image has no CA certificates"
    );
    // /metrics is not on the published API port: the gateways serve it on 9101, which
    // only Prometheus reaches.
    for service in ["gateway", "aws-gateway"] {
        let body = service_body(&text, service);
        assert!(body.contains("METRICS_ADDR: 0.0.0.0:9101"), "{service}");
        assert!(!body.contains(":9101\""), "{service} publishes 9101");
    }
    // No working secret is committed.
    let lambda_env = std::fs::read_to_string(root().join("deploy/lambda.env")).unwrap();
    assert!(
        !lambda_env
            .lines()
            .any(|l| l.starts_with("JWT_SECRET=") || l.starts_with("WORKER_TOKEN=")),
        "deploy/lambda.env holds a secret"
    );
    let template = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    assert!(
        template.contains("StopTimeout: 120"),
        "the ECS worker's drain time"
    );
}

/// The compose model as JSON (docker-compose 1.29 prints YAML only).
fn model() -> serde_json::Value {
    let out = Command::new("bash")
        .current_dir(root())
        .args([
            "-c",
            "docker-compose -f docker-compose.yml --env-file .env.example config \
             | python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn profiles_split_the_local_and_the_aws_stacks() {
    let m = model();
    let services = &m["services"];
    for s in ["postgres", "redis", "rabbitmq", "gateway", "worker"] {
        assert_eq!(services[s]["profiles"], serde_json::json!(["local"]), "{s}");
    }
    for s in ["localstack", "aws-gateway", "aws-worker"] {
        assert_eq!(services[s]["profiles"], serde_json::json!(["aws"]), "{s}");
    }
    for s in ["prometheus", "grafana"] {
        assert!(
            services[s]["profiles"].is_null(),
            "{s} serves both profiles"
        );
    }
    let gateway = &services["aws-gateway"];
    let worker = &services["aws-worker"];
    assert_eq!(gateway["environment"]["BACKEND"], "aws");
    assert_eq!(worker["environment"]["QUEUE"], "sqs");
    for env in [&gateway["environment"], &worker["environment"]] {
        assert!(env["DATABASE_URL"].is_null() && env["AMQP_URL"].is_null());
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://localstack:4566");
    }
    assert!(
        worker["environment"]["JWT_SECRET"].is_null(),
        "workers hold no JWT key"
    );
    // Prometheus scrapes `gateway` and `worker` in both profiles.
    assert_eq!(
        gateway["networks"]["default"]["aliases"],
        serde_json::json!(["gateway"])
    );
    let mounts = services["localstack"]["volumes"].to_string();
    assert!(mounts.contains("/etc/localstack/init/ready.d"), "{mounts}");

    // The names the services use are the ones the init hook makes (run here on moto).
    let hook = Command::new("python3")
        .current_dir(root())
        .arg("localstack/init/ready.d/codebox.py")
        .env("AWS_ENDPOINT_URL", codebox_tests::aws::endpoint())
        .env("CODEBOX_PREFIX", "codebox")
        .output()
        .unwrap();
    assert!(
        hook.status.success(),
        "{}",
        String::from_utf8_lossy(&hook.stderr)
    );
    let made = String::from_utf8_lossy(&hook.stdout).into_owned();
    for line in made.lines() {
        let (k, v) = line.split_once('=').unwrap();
        let used = &gateway["environment"][k];
        match k {
            "TASK_QUEUE_URL" | "TASK_DLQ_URL" => {
                let name = v.rsplit('/').next().unwrap();
                let used = worker["environment"][k].as_str().unwrap();
                assert!(used.ends_with(&format!("/{name}")), "{k}: {used} vs {v}");
            }
            // A Lambda function's alone: the gateway calls webhooks itself.
            "WEBHOOK_QUEUE_URL" => assert!(used.is_null(), "{k}: {used}"),
            "JWT_SECRET_ARN" | "WORKER_TOKEN_ARN" | "WEBHOOK_SECRET_ARN" => {
                let name = used.as_str().unwrap();
                assert!(
                    v.contains(&format!(":secret:{name}-")),
                    "{k}: {name} vs {v}"
                );
            }
            _ => assert_eq!(used.as_str(), Some(v), "{k}"),
        }
    }
}

/// The compose broker runs with the settings the tests' broker runs with: deferred tasks
/// come back within seconds of a restart (`deploy/rabbitmq/advanced.config`, tested in
/// `faults.rs`).
#[test]
fn the_compose_broker_takes_the_stacks_settings() {
    let m = model();
    let volumes = m["services"]["rabbitmq"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .filter_map(|v| v.as_str())
            .any(|v| v
                .ends_with("/deploy/rabbitmq/advanced.config:/etc/rabbitmq/advanced.config:ro")),
        "{volumes:?}"
    );
    let text = std::fs::read_to_string(root().join("deploy/rabbitmq/advanced.config")).unwrap();
    assert!(text.contains("{dead_letter_worker_publisher_confirm_timeout, 5000}"));
}

#[test]
fn missing_secrets_are_refused() {
    let empty = std::env::temp_dir().join(format!("codebox-empty-{}.env", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let out = Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "--env-file"])
        .arg(&empty)
        .arg("config")
        .env_remove("JWT_SECRET")
        .env_remove("WORKER_TOKEN")
        .env_remove("POSTGRES_PASSWORD")
        .output()
        .expect("docker-compose");
    let _ = std::fs::remove_file(&empty);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("set ") && err.contains(".env"), "{err}");
}

#[test]
fn dashboard_charts_the_emitted_metrics() {
    let dash =
        std::fs::read_to_string(root().join("deploy/grafana/dashboards/codebox.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dash).unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    for metric in [
        "codebox_http_requests_total",
        "codebox_http_request_duration_seconds_bucket",
        "codebox_tasks_total",
        "codebox_sandbox_seconds_bucket",
        "codebox_queue_wait_seconds_bucket",
        "codebox_tasks_in_flight",
        "rabbitmq_queue_messages_ready",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "{metric} is not charted"
        );
    }
    // Every codebox metric charted is one the code emits.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let consumer = std::fs::read_dir(root.join("worker/src/consumer"))
        .unwrap()
        .map(|entry| entry.unwrap().path());
    let sources = [
        root.join("functions/src/telemetry.rs"),
        root.join("functions/src/handlers/create_task.rs"),
    ]
    .into_iter()
    .chain(consumer)
    .map(|p| std::fs::read_to_string(p).unwrap())
    .collect::<Vec<_>>()
    .join("\n");
    for e in &exprs {
        for word in e.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if let Some(name) = word.strip_prefix("codebox_") {
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_count")
                    .trim_end_matches("_sum");
                assert!(
                    sources.contains(&format!("\"codebox_{base}\"")),
                    "codebox_{base} is charted but not emitted"
                );
            }
        }
    }
}

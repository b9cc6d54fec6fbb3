//! The AWS profile's stand-in: moto's server (started by `scripts/services.sh up`) with
//! resources made by the very init hook LocalStack runs (`localstack/init/ready.d`), each
//! test run under its own name prefix.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Command;

/// moto's address: `CODEBOX_TEST_AWS_ENDPOINT_URL`, or the services script's default.
pub fn endpoint() -> String {
    std::env::var("CODEBOX_TEST_AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:55500".to_owned())
}

/// Freshly provisioned queue, DLQ, tables, bucket and secrets.
pub struct StandIn {
    pub endpoint: String,
    pub prefix: String,
    /// What the init hook printed: `TASK_QUEUE_URL`, `USERS_TABLE`, `JWT_SECRET_ARN`, …
    pub env: HashMap<String, String>,
    /// The value stored behind `WORKER_TOKEN_ARN` (a worker on ECS gets it injected).
    pub worker_token: String,
    /// The value stored behind `WEBHOOK_SECRET_ARN`.
    pub webhook_secret: String,
}

impl StandIn {
    /// Runs the init hook with a unique prefix, the given visibility timeout and the
    /// receives after which SQS moves a message to the dead-letter queue.
    pub fn provision(visibility_secs: u32, max_receives: u32) -> Self {
        let endpoint = endpoint();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..12]);
        let worker_token = format!("worker-{id}");
        let webhook_secret = format!("webhook-{id}");
        let hook = crate::procs::root().join("localstack/init/ready.d/codebox.py");
        let out = Command::new("python3")
            .arg(&hook)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("CODEBOX_PREFIX", &prefix)
            .env("CODEBOX_VISIBILITY_SECS", visibility_secs.to_string())
            .env("CODEBOX_MAX_RECEIVES", max_receives.to_string())
            .env("JWT_SECRET", format!("{id}{id}"))
            .env("WORKER_TOKEN", &worker_token)
            .env("WEBHOOK_SECRET", &webhook_secret)
            .output()
            .expect("python3 runs the init hook");
        assert!(
            out.status.success(),
            "the init hook failed against {endpoint} (start moto with `bash scripts/services.sh up`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<HashMap<_, _>>();
        Self {
            endpoint,
            prefix,
            env,
            worker_token,
            webhook_secret,
        }
    }

    pub fn var(&self, name: &str) -> String {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("the init hook did not print {name}"))
            .clone()
    }

    /// The environment a gateway or worker process needs to use these resources.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(
            [
                ("BACKEND", "aws".to_owned()),
                ("QUEUE", "sqs".to_owned()),
                ("AWS_ENDPOINT_URL", self.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                // Nothing of the host's AWS set-up may leak in.
                ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
                ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        codebox_adapters::aws::stand_in_config(&self.endpoint).await
    }
}

//! The compose profile as host processes: the gateway and worker binaries started with a
//! fresh queue, blob directory and secrets against the project's services, killed when
//! dropped. Used by the fault tests and the process run of the end-to-end suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let path = dir.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Profile {
    pub env: Vec<(String, String)>,
    pub gateway_port: u16,
}

impl Profile {
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let gateway_port = free_port();
        let env = [
            ("BACKEND", "local".to_owned()),
            (
                "DATABASE_URL",
                env_or(
                    "CODEBOX_TEST_POSTGRES_URL",
                    "postgres://codebox@127.0.0.1:55432/codebox",
                ),
            ),
            (
                "REDIS_URL",
                env_or("CODEBOX_TEST_REDIS_URL", "redis://127.0.0.1:56379"),
            ),
            (
                "AMQP_URL",
                env_or(
                    "CODEBOX_TEST_AMQP_URL",
                    "amqp://guest:guest@127.0.0.1:55672/%2f",
                ),
            ),
            ("TASK_QUEUE", format!("codebox-faults-{id}")),
            (
                "BLOB_DIR",
                std::env::temp_dir()
                    .join(format!("codebox-faults-{id}"))
                    .to_string_lossy()
                    .into_owned(),
            ),
            ("JWT_SECRET", format!("{id}{id}")),
            ("WORKER_TOKEN", format!("worker-{id}")),
            ("BCRYPT_COST", "4".to_owned()),
            ("MAX_DELIVERIES", "3".to_owned()),
            ("TASK_QUEUE_EXPIRES_SECS", "600".to_owned()),
            ("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}")),
            ("API_URL", format!("http://127.0.0.1:{gateway_port}")),
            ("CODEBOX_SANDBOX_REAP_AFTER_SECS", "8".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self { env, gateway_port }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.gateway_port))
    }

    pub fn spawn(&self, name: &str, extra: &[(&str, String)]) -> Proc {
        let mut cmd = Command::new(bin(name));
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Proc(cmd.spawn().unwrap())
    }

    pub async fn gateway(&self) -> Proc {
        let p = self.spawn("gateway", &[]);
        wait_for(Duration::from_secs(30), || async {
            reqwest::get(format!("http://{}/health", self.addr()))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        p
    }

    /// A worker whose metrics answer on the returned port.
    pub async fn worker(&self) -> (Proc, u16) {
        let port = free_port();
        let p = self.spawn(
            "codebox-worker",
            &[("WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"))],
        );
        wait_for(Duration::from_secs(30), || async {
            reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .is_ok()
        })
        .await;
        (p, port)
    }
}

pub async fn wait_for<F, Fut>(within: Duration, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !ok().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn services(action: &str) {
    let status = Command::new("bash")
        .arg(root().join("scripts/services.sh"))
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/services.sh {action} failed");
}

impl Default for Profile {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway and one worker as processes, for one test.
pub struct ProcessStack {
    pub profile: Profile,
    _gateway: Proc,
    _worker: Proc,
}

impl ProcessStack {
    pub async fn start() -> Self {
        let profile = Profile::new();
        let gateway = profile.gateway().await;
        let (worker, _) = profile.worker().await;
        Self {
            profile,
            _gateway: gateway,
            _worker: worker,
        }
    }
}

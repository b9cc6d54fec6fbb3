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
    /// SIGTERM, as a service manager stops it (a worker drains its sandboxes), then
    /// SIGKILL after 15 s.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Profile {
    pub env: Vec<(String, String)>,
    /// What only workers get (the AWS profile's gateway reads its secrets by ARN).
    pub worker_env: Vec<(String, String)>,
    pub gateway_port: u16,
    /// The AWS profile's resources on moto.
    pub aws: Option<crate::aws::StandIn>,
    /// The compose profile's database, its own (dropped with the profile).
    _database: Option<Database>,
}

/// A PostgreSQL database of one profile: a deployment has a database of its own, so no
/// other test's tasks (a conformance suite's outbox, a killed gateway's half-made
/// submissions) reach this profile's outbox sweeper and queue.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    fn create(admin_url: &str, name: &str) -> Self {
        if let Err(e) = psql(admin_url, &format!("CREATE DATABASE {name}")) {
            panic!("a database for the test: {e}");
        }
        Self {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The URL of this database on the server `admin_url` names (its query kept).
    fn url(&self) -> String {
        let (server, rest) = self
            .admin_url
            .rsplit_once('/')
            .expect("a PostgreSQL URL ends with its database");
        let query = rest.find('?').map_or("", |i| &rest[i..]);
        format!("{server}/{}{query}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Never a panic here (a test already failing would abort and lose its message).
        if let Err(e) = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("the test database {} stays: {e}", self.name);
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = std::process::Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .map_err(|e| {
            format!("psql (PostgreSQL's client, from `bash scripts/services.sh up`): {e}")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Profile {
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let gateway_port = free_port();
        let database = Database::create(
            &env_or(
                "CODEBOX_TEST_POSTGRES_URL",
                "postgres://codebox@127.0.0.1:55432/codebox",
            ),
            &format!("codebox_{id}"),
        );
        let env = [
            ("BACKEND", "local".to_owned()),
            ("DATABASE_URL", database.url()),
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
            // Sessions and rate counts of this profile only: tests share one Redis.
            ("REDIS_PREFIX", format!("codebox-{id}:")),
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
            ("LIMIT_AUTH_PER_MINUTE", "1000000".to_owned()),
            ("LIMIT_SUBMIT_PER_MINUTE", "1000000".to_owned()),
            ("LIMIT_ACTIVE_TASKS", "1000000".to_owned()),
            ("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}")),
            ("API_URL", format!("http://127.0.0.1:{gateway_port}")),
            ("CODEBOX_SANDBOX_REAP_AFTER_SECS", "8".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            env,
            worker_env: Vec::new(),
            gateway_port,
            aws: None,
            _database: Some(database),
        }
    }

    /// The AWS profile: DynamoDB, SQS, S3 and Secrets Manager on moto, provisioned by the
    /// LocalStack init hook; the gateway reads its secrets by ARN.
    pub fn aws() -> Self {
        let gateway_port = free_port();
        // Longer than any task of the suite takes to start, short enough that the
        // worker's extensions run in every test that compiles.
        let visibility = 6;
        let aws = crate::aws::StandIn::provision(visibility, 3);
        let mut env = aws.process_env();
        env.extend(
            [
                ("BCRYPT_COST", "4".to_owned()),
                ("MAX_DELIVERIES", "3".to_owned()),
                ("SQS_VISIBILITY_SECS", visibility.to_string()),
                ("LIMIT_AUTH_PER_MINUTE", "1000000".to_owned()),
                ("LIMIT_SUBMIT_PER_MINUTE", "1000000".to_owned()),
                ("LIMIT_ACTIVE_TASKS", "1000000".to_owned()),
                ("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}")),
                ("API_URL", format!("http://127.0.0.1:{gateway_port}")),
                ("CODEBOX_SANDBOX_REAP_AFTER_SECS", "8".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        Self {
            env,
            // As the template has it: no live output where functions cannot carry it.
            worker_env: vec![
                ("WORKER_TOKEN".to_owned(), aws.worker_token.clone()),
                ("LIVE_EVENTS".to_owned(), "off".to_owned()),
            ],
            gateway_port,
            aws: Some(aws),
            _database: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.gateway_port))
    }

    pub fn spawn(&self, name: &str, extra: &[(&str, String)]) -> Proc {
        self.spawn_to(name, extra, Stdio::null())
    }

    /// As [`Profile::spawn`], with the process's standard output going to `stdout`.
    pub fn spawn_to(&self, name: &str, extra: &[(&str, String)], stdout: Stdio) -> Proc {
        let mut cmd = Command::new(bin(name));
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(stdout)
            .stderr(Stdio::inherit());
        Proc(cmd.spawn().unwrap())
    }

    pub async fn gateway(&self) -> Proc {
        let p = self.spawn("gateway", &[]);
        wait_for(Duration::from_secs(30), || async {
            crate::get(format!("http://{}/health", self.addr()))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        p
    }

    /// One more gateway of the same deployment, on a port of its own.
    pub async fn another_gateway(&self) -> (Proc, SocketAddr) {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let p = self.spawn("gateway", &[("GATEWAY_ADDR", addr.to_string())]);
        wait_for(Duration::from_secs(30), || async {
            crate::get(format!("http://{addr}/health"))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        (p, addr)
    }

    /// A worker whose standard error goes to a file: what it says when it stops
    /// (`stopped after running N tasks`) can be read back with [`tasks_run`].
    pub async fn logged_worker(&self, extra: &[(&str, &str)]) -> (Proc, PathBuf) {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "codebox-worker-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut cmd = Command::new(bin("codebox-worker"));
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(
                self.worker_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env("WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"))
            // What each task's delivery did (taken, leased elsewhere, handed back) is in
            // the log, for a count that comes out wrong.
            .env("RUST_LOG", "warn,codebox_worker=info")
            .envs(extra.iter().copied());
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        let p = Proc(cmd.spawn().unwrap());
        wait_for(Duration::from_secs(30), || async {
            crate::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .is_ok()
        })
        .await;
        (p, log)
    }

    /// A worker whose metrics answer on the returned port.
    pub async fn worker(&self) -> (Proc, u16) {
        self.worker_with(&[]).await
    }

    /// A worker of this profile with `env` on top, once its metrics answer; and their port.
    pub async fn worker_with(&self, env: &[(&str, String)]) -> (Proc, u16) {
        let port = free_port();
        let mut extra = vec![("WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"))];
        extra.extend(self.worker_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        extra.extend(env.iter().cloned());
        let p = self.spawn("codebox-worker", &extra);
        wait_for(Duration::from_secs(30), || async {
            crate::get(format!("http://127.0.0.1:{port}/metrics"))
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

/// A project service stopped by a fault test ([`stop_service`]). [`Stopped::restart`]
/// brings it back; a test that fails while it is down brings it back as it unwinds, so the
/// rest of the suite still has its services.
pub struct Stopped {
    up: bool,
}

/// Stops one of the project's services (`postgres`, `redis`, `rabbitmq`, `moto`).
pub fn stop_service(service: &str) -> Stopped {
    services(&format!("stop-{service}"));
    Stopped { up: false }
}

impl Stopped {
    pub fn restart(mut self) {
        self.up = true;
        services("up");
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.up {
            let _ = Command::new("bash")
                .arg(root().join("scripts/services.sh"))
                .arg("up")
                .status();
        }
    }
}

/// Sends SIGTERM (what `docker stop` and ECS send) and waits for the process to end.
/// Returns how long it took.
pub fn terminate(p: &mut Proc, within: Duration) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            assert!(status.success(), "exited with {status} after SIGTERM");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still running {within:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The count a stopped worker logged: `codebox-worker: stopped after running N tasks`.
pub fn tasks_run(log: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("codebox-worker: stopped after running ")?
                .strip_suffix(" tasks")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no stop line in {}:\n{text}", log.display()))
}

impl Default for Profile {
    fn default() -> Self {
        Self::new()
    }
}

/// A gateway and one worker as processes, for one test.
pub struct ProcessStack {
    _worker: Proc,
    _gateway: Proc,
    /// Dropped last: its database outlives the processes that use it.
    pub profile: Profile,
}

impl ProcessStack {
    pub async fn start() -> Self {
        Self::start_with(Profile::new()).await
    }

    /// The AWS profile (SQS, DynamoDB, S3 on moto).
    pub async fn start_aws() -> Self {
        Self::start_with(Profile::aws()).await
    }

    pub async fn start_with(profile: Profile) -> Self {
        let gateway = profile.gateway().await;
        let (worker, _) = profile.worker().await;
        Self {
            profile,
            _gateway: gateway,
            _worker: worker,
        }
    }
}

/// Consumers that crash on the next message: each takes it and dies without settling,
/// `times` times; the delivery counts must read 1, 2, … Then the broker has given up.
pub async fn crash_on_next_message(consumer: &dyn codebox_core::ports::QueueConsumer, times: u32) {
    for attempt in 1..=times {
        let d = consumer
            .receive(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("delivery");
        assert_eq!(d.attempt, attempt);
        drop(d);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        consumer
            .receive(Duration::from_secs(2))
            .await
            .unwrap()
            .is_none(),
        "the broker gave up on the message"
    );
}

/// A worker's `/metrics` page.
pub async fn worker_metrics(port: u16) -> String {
    crate::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of the samples of every series whose line starts with `prefix`.
pub fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Submits a 2 s task, SIGKILLs `first` once the task runs, starts another worker and
/// checks that it runs the task to the end and that the dead worker's container is gone
/// (its agent sees the worker's connection close once the program ends; the engine
/// removes it).
pub async fn kill_mid_task_then_recover(p: &Profile, mut first: Proc, c: &crate::Client) {
    let id = c
        .submit(&serde_json::json!({"language": "python", "code": "import time\ntime.sleep(2)\nprint('done')"}))
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), || async {
        c.status(&id).await.unwrap()["status"] == "running"
    })
    .await;
    first.0.kill().unwrap(); // SIGKILL: nothing is settled
    first.0.wait().unwrap();
    let (_second, _) = p.worker().await;
    let r = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "done\n");
    wait_for(Duration::from_secs(30), || async {
        crate::containers_of(&id).unwrap() == 0
    })
    .await;
}

/// Tasks that each print their own marker, submitted from `clients` at once: returns
/// (client index, task id, marker) for each.
pub async fn submit_marked(
    clients: &[crate::Client],
    count: usize,
) -> Vec<(usize, String, String)> {
    let mut handles = Vec::new();
    for (ci, c) in clients.iter().enumerate() {
        let c = crate::Client {
            http: c.http.clone(),
            base: c.base.clone(),
            token: c.token.clone(),
        };
        let mine: Vec<usize> = (0..count).filter(|i| i % clients.len() == ci).collect();
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in mine {
                let marker = format!("task-{i}");
                let id = c
                    .submit(&serde_json::json!({"language": "python", "code": format!("print('{marker}')")}))
                    .await
                    .unwrap();
                out.push((ci, id, marker));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

/// How many of the clients' tasks are `completed`, read from their listings; `None` while
/// the API does not answer. Panics on a task that ended any other way.
pub async fn completed(clients: &[crate::Client]) -> Option<usize> {
    let mut done = 0;
    for c in clients {
        let mut cursor: Option<String> = None;
        loop {
            let mut url = c.url("/task?limit=100");
            if let Some(cur) = &cursor {
                url.push_str(&format!("&cursor={cur}"));
            }
            let r = c.http.get(url).bearer_auth(&c.token).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            let page: serde_json::Value = r.json().await.ok()?;
            let items = page["items"].as_array()?;
            done += items.iter().filter(|t| t["status"] == "completed").count();
            if let Some(t) = items
                .iter()
                .find(|t| t["status"] == "failed" || t["status"] == "cancelled")
            {
                panic!("a task ended without completing: {t}");
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Some(done)
}

/// Waits until at least `n` of the clients' tasks are completed.
pub async fn wait_completed(clients: &[crate::Client], n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let done = completed(clients).await;
        if done.is_some_and(|d| d >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done:?} of {n} tasks completed within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every task completed with its own marker as its output.
pub async fn assert_each_completed_with_its_marker(
    clients: &[crate::Client],
    tasks: &[(usize, String, String)],
) {
    for (ci, id, marker) in tasks {
        let c = &clients[*ci];
        let r = c.get_json(&format!("/task/{id}")).await.unwrap();
        assert_eq!(r["status"], "completed", "{id}: {r}");
        assert_eq!(r["result"]["stdout"], format!("{marker}\n"), "{id}: {r}");
    }
}

/// Sandbox containers that exist now, of any task.
pub fn sandbox_containers() -> usize {
    sandbox_containers_but_phantoms(false)
}

/// Sandbox containers on the engine; with `skip_phantoms`, not counting those the engine
/// itself is stuck removing with no process left ("Removal In Progress" forever: a Docker
/// 20.10 bug that only a restart of dockerd clears; nothing of the sandbox runs or holds
/// resources, and no client of the engine can remove it).
fn sandbox_containers_but_phantoms(skip_phantoms: bool) -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=codebox.role=sandbox",
            "--format",
            "{{.ID}} {{.State}} {{.Names}} {{.Status}} {{.CreatedAt}}",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut count = 0;
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (id, state) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        if skip_phantoms && state == "removing" && engine_phantom(id) {
            eprintln!("sandbox container stuck in the engine's own removal, no process: {line}");
            continue;
        }
        eprintln!("sandbox container: {line}");
        count += 1;
    }
    // The OCI engines' (runc, and crun, the default where it runs): their containers end
    // with their worker.
    use codebox_worker::sandbox::engine::runc::{Runtime, state_root};
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let root = state_root(runtime);
        if !root.exists() {
            continue;
        }
        // A failed list (a container deleted as the runtime read it) is listed again.
        let out = (0..5)
            .map(|_| {
                Command::new(runtime.name())
                    .arg("--root")
                    .arg(&root)
                    .args(["list", "-q"])
                    .output()
                    .unwrap()
            })
            .find(|o| o.status.success())
            .expect("the runtime's list succeeds within 5 tries");
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            eprintln!("{} sandbox: {id}", runtime.name());
            count += 1;
        }
    }
    count
}

/// Whether the engine is removing this container with nothing of it running.
fn engine_phantom(id: &str) -> bool {
    Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.Pid}}",
            id,
        ])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "false 0")
}

/// [`sandbox_containers`] once the product's own clean-up has looked: a worker's reaper
/// (which runs every 20 s or so in a live worker, and this suite's workers have stopped)
/// removes what the engine failed to remove. Docker 20.10 can fail an auto-removal under
/// load ("unable to remove filesystem … directory not empty"), leaving a dead container
/// that only a direct removal clears; anything else left is counted.
pub async fn sandbox_containers_after_reaping() -> usize {
    let sandbox = codebox_worker::sandbox::Sandboxes::connect(
        codebox_worker::sandbox::SandboxConfig::default(),
    )
    .await
    .expect("the Docker engine");
    // Let a removal the engine is doing end (or fail) before the reaper looks.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let reaped = sandbox
        .reap_stale(Duration::from_secs(90))
        .await
        .expect("the reaper lists containers");
    if reaped > 0 {
        eprintln!("the reaper removed {reaped} container(s) the engine had failed to remove");
    }
    sandbox_containers_but_phantoms(true)
}

/// Two gateways of one profile with `extra` settings (a second one on its own port):
/// the counts behind the limits on clients must be shared. Returns the processes and the
/// second gateway's address.
pub async fn two_gateways(p: &Profile, extra: &[(&str, String)]) -> (Proc, Proc, SocketAddr) {
    let second_port = free_port();
    let first = p.spawn("gateway", extra);
    let mut with_port = extra.to_vec();
    with_port.push(("GATEWAY_ADDR", format!("127.0.0.1:{second_port}")));
    let second = p.spawn("gateway", &with_port);
    let second_addr = SocketAddr::from(([127, 0, 0, 1], second_port));
    for addr in [p.addr(), second_addr] {
        wait_for(Duration::from_secs(30), || async {
            crate::get(format!("http://{addr}/health"))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    (first, second, second_addr)
}

/// Logins spread over two gateways count against one rate: with a limit of 4 a minute,
/// the register and three logins pass and the next call, on either gateway, is 429.
pub async fn auth_rate_is_shared_by_gateways(p: &Profile) {
    let (_a, _b, second) = two_gateways(p, &[("LIMIT_AUTH_PER_MINUTE", "4".to_owned())]).await;
    let http = crate::http();
    let creds = serde_json::json!({"username": format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..12]), "password": "password123"});
    let first = p.addr();
    let r = http
        .post(format!("http://{first}/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login = |addr: SocketAddr| {
        http.post(format!("http://{addr}/login"))
            .json(&creds)
            .send()
    };
    for addr in [second, first, second] {
        assert_eq!(login(addr).await.unwrap().status(), 200, "{addr}");
    }
    for addr in [first, second] {
        let r = login(addr).await.unwrap();
        assert_eq!(r.status(), 429, "{addr}");
        let after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&after));
    }
}

/// A worker told to spill every commit body over 1 KiB: a task with 6 KB of output
/// completes with all of it, through the blob store (the worker counts the spill).
pub async fn big_outcome_goes_through_the_blob_store(p: &Profile) -> String {
    let _gateway = p.gateway().await;
    let (_worker, port) = p
        .worker_with(&[("COMMIT_SPILL_BYTES", "1024".to_owned())])
        .await;
    let c = crate::Client::new_user(p.addr()).await.unwrap();
    let r = c
        .run(serde_json::json!({"language": "python", "code": "print('y' * 6000)"}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], format!("{}\n", "y".repeat(6000)));
    let spilled = metric_sum(&worker_metrics(port).await, "codebox_commits_spilled_total");
    assert_eq!(spilled, 1.0, "the outcome went through the blob store");
    r["id"].as_str().unwrap().to_owned()
}

//! Support for end-to-end tests and the load generator: a client of the HTTP API and a
//! shared embedded stack started on 127.0.0.1:0 against the local Docker engine.
#![allow(clippy::expect_used)]

pub mod aws;
pub mod procs;
pub mod programs;
pub mod suite;
pub mod tls;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A stack shared by the tests of one test binary, on its own runtime so it outlives
/// each test's runtime; its sandboxes on the default engine (crun where it runs, else
/// runc, else Docker).
pub fn shared_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(None))
}

/// The same with every sandbox on gVisor, `runsc` run by the worker on the sandbox's
/// bundle (the default where the runtime asked for is `runsc`).
pub fn shared_gvisor_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(Some("runsc")))
}

/// The same with every sandbox on gVisor through the Docker engine (`runsc` registered
/// with it by `make test`): the fallback where the worker cannot run runsc itself.
pub fn shared_gvisor_docker_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(Some(GVISOR_DOCKER)))
}

/// The same with every sandbox run by crun, started by the worker on the sandbox's bundle
/// (`CODEBOX_SANDBOX_RUNTIME=crun`).
pub fn shared_crun_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(Some("crun")))
}

/// The same with every sandbox run by runc itself (`CODEBOX_SANDBOX_ENGINE=runc`,
/// `CODEBOX_SANDBOX_RUNTIME=runc`).
pub fn shared_runc_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(Some(RUNC_ENGINE)))
}

/// The same with every sandbox run by the Docker engine (`CODEBOX_SANDBOX_ENGINE=docker`).
pub fn shared_docker_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| spawn_stack(Some(DOCKER_ENGINE)))
}

/// Asks [`start_embedded_on`] for the runc engine rather than a runtime of Docker's.
pub const RUNC_ENGINE: &str = "runc-engine";
/// Asks [`start_embedded_on`] for the Docker engine with its default runtime.
pub const DOCKER_ENGINE: &str = "docker-engine";
/// Asks [`start_embedded_on`] for the Docker engine with gVisor's runtime.
pub const GVISOR_DOCKER: &str = "runsc-docker";

fn spawn_stack(runtime: Option<&'static str>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("embedded-stack".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the embedded stack");
            rt.block_on(async move {
                let running = start_embedded_on(runtime).await;
                tx.send(running.addr)
                    .expect("the test waits for the address");
                // Serve until the test process exits.
                std::future::pending::<()>().await;
                drop(running);
            });
        })
        .expect("a thread for the embedded stack");
    rx.recv_timeout(Duration::from_secs(120))
            .expect("the embedded stack did not start within 120 s (is Docker running and the runner image built? `make docker runner-image`)")
}

/// Starts an embedded stack on 127.0.0.1:0 with cheap bcrypt, fails loudly without Docker.
pub async fn start_embedded() -> codebox_embedded::Running {
    start_embedded_on(None).await
}

/// As [`start_embedded`], with sandboxes on the OCI runtime given (`runsc`), or on the
/// engine named ([`RUNC_ENGINE`], [`DOCKER_ENGINE`]).
pub async fn start_embedded_on(runtime: Option<&str>) -> codebox_embedded::Running {
    start_embedded_with(runtime, |_| {}).await
}

/// As [`start_embedded_on`], with `change` made to the configuration last.
pub async fn start_embedded_with(
    runtime: Option<&str>,
    change: impl FnOnce(&mut codebox_embedded::EmbeddedConfig),
) -> codebox_embedded::Running {
    let mut config = codebox_embedded::EmbeddedConfig::from_env().expect("embedded config");
    match runtime {
        // runc by the worker, not crun, which the default tries first.
        Some(RUNC_ENGINE) => {
            config.sandbox.engine = codebox_worker::sandbox::EngineKind::Runc;
            config.sandbox.runtime = Some("runc".to_owned());
        }
        Some(DOCKER_ENGINE) => config.sandbox.engine = codebox_worker::sandbox::EngineKind::Docker,
        Some(GVISOR_DOCKER) => {
            config.sandbox.engine = codebox_worker::sandbox::EngineKind::Docker;
            config.sandbox.runtime = Some("runsc".to_owned());
        }
        // crun by the worker or not at all: no quiet fallback to Docker.
        Some("crun") => {
            config.sandbox.engine = codebox_worker::sandbox::EngineKind::Runc;
            config.sandbox.runtime = Some("crun".to_owned());
        }
        Some(runtime) => config.sandbox.runtime = Some(runtime.to_owned()),
        None => {}
    }
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.api.bcrypt_cost = 4;
    // Filters run as a child of a binary that knows `--filter` (this test binary does not):
    // the worker binary of the same build, next to it.
    if let Some(program) = worker_binary() {
        config.worker.filter.program = program;
    }
    // The suites make many users from one address and queue many tasks each; the limits
    // on clients have tests of their own.
    config.api.limits = codebox_core::limits::LimitsConfig {
        auth_per_minute: 1_000_000,
        submit_per_minute: 1_000_000,
        max_active_tasks: 1_000_000,
        ..codebox_core::limits::LimitsConfig::default()
    };
    change(&mut config);
    codebox_embedded::start(config)
        .await
        .expect("the embedded stack must start: Docker and the runner image are required")
}

/// `codebox-worker` of the build this binary belongs to (tests live in `deps/`).
fn worker_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("codebox-worker"),
        dir.parent()?.join("codebox-worker"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// An HTTP client for the tests (rustls on ring, the provider installed first).
pub fn http() -> reqwest::Client {
    codebox_worker::tls::install_provider();
    reqwest::Client::new()
}

/// `GET url` with [`http`].
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// A logged-in user of the API.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    /// Registers a fresh user and logs in.
    pub async fn new_user(addr: SocketAddr) -> anyhow::Result<Self> {
        codebox_worker::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://{addr}");
        let username = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let creds = json!({"username": username, "password": "password123"});
        let r = http
            .post(format!("{base}/register"))
            .json(&creds)
            .send()
            .await?;
        if r.status() != 201 {
            bail!("register: {} {}", r.status(), r.text().await?);
        }
        let r = http
            .post(format!("{base}/login"))
            .json(&creds)
            .send()
            .await?;
        if r.status() != 200 {
            bail!("login: {} {}", r.status(), r.text().await?);
        }
        let token = r.json::<Value>().await?["token"]
            .as_str()
            .context("login returned no token")?
            .to_owned();
        Ok(Self { http, base, token })
    }

    /// The same user on another API process (compose: a second gateway).
    pub fn at(&self, addr: SocketAddr) -> Self {
        Self {
            http: self.http.clone(),
            base: format!("http://{addr}"),
            token: self.token.clone(),
        }
    }

    /// Opens the task's event stream (`GET /task/{id}/events`).
    pub async fn open_events(&self, id: &str) -> anyhow::Result<EventStream> {
        self.open_events_after(id, None).await
    }

    /// Opens the task's event stream again after the event `last` (`Last-Event-ID`).
    pub async fn open_events_after(
        &self,
        id: &str,
        last: Option<&str>,
    ) -> anyhow::Result<EventStream> {
        let mut request = self
            .http
            .get(self.url(&format!("/task/{id}/events")))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let r = request.send().await?;
        if r.status() != 200 {
            bail!("events: {} {}", r.status(), r.text().await?);
        }
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !kind.starts_with("text/event-stream") {
            bail!("events: content type {kind}");
        }
        Ok(EventStream {
            response: r,
            parser: codebox_api::events::Parser::new(),
            ready: std::collections::VecDeque::new(),
        })
    }

    /// Every event of the task's stream until it closes, each with when it arrived.
    pub async fn events(&self, id: &str) -> anyhow::Result<Vec<SseEvent>> {
        self.events_after(id, None).await
    }

    /// Every event of the task's stream opened again after the event `last`.
    pub async fn events_after(
        &self,
        id: &str,
        last: Option<&str>,
    ) -> anyhow::Result<Vec<SseEvent>> {
        let mut stream = self.open_events_after(id, last).await?;
        let mut events = Vec::new();
        while let Some(event) = stream.next().await? {
            events.push(event);
        }
        Ok(events)
    }

    /// The API process's `GET /metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /task`; returns the id.
    pub async fn submit(&self, body: &Value) -> anyhow::Result<String> {
        let r = self
            .http
            .post(self.url("/task"))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        if r.status() != 202 {
            bail!("submit: {} {}", r.status(), r.text().await?);
        }
        Ok(r.json::<Value>().await?["id"]
            .as_str()
            .context("no id")?
            .to_owned())
    }

    /// An authenticated GET of `path`.
    pub async fn fetch(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
    }

    /// An authenticated GET of `path`, as JSON (whatever the status).
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.fetch(path).await?.json().await?)
    }

    pub async fn status(&self, id: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(self.url(&format!("/status/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if r.status() != 200 {
            bail!("status: {} {}", r.status(), r.text().await?);
        }
        Ok(r.json().await?)
    }

    /// Polls `GET /status` until the task is finished (bounded by `within`), then
    /// returns `GET /result` as JSON.
    pub async fn wait(&self, id: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(5);
        loop {
            let s = self.status(id).await?;
            match s["status"].as_str() {
                Some(status) if codebox_api::TaskStatus::is_finished_str(status) => break,
                _ if Instant::now() > deadline => {
                    bail!("task {id} still {} after {within:?}", s["status"])
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
        let r = self
            .http
            .get(self.url(&format!("/result/{id}")))
            .bearer_auth(&self.token)
            .header("accept", "application/json")
            .send()
            .await?;
        if r.status() != 200 {
            bail!("result: {} {}", r.status(), r.text().await?);
        }
        Ok(r.json().await?)
    }

    /// `DELETE /task/{id}`: cancels the task.
    pub async fn cancel(&self, id: &str) -> reqwest::Response {
        self.http
            .delete(self.url(&format!("/task/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE /task/{id}")
    }

    /// `POST /task/upload`, then the PNG `PUT` to the URL it grants with the headers it
    /// names (and no credentials), as any HTTP client does: the `image_key` to submit.
    pub async fn upload_png(&self, png: &[u8]) -> anyhow::Result<String> {
        let r = self
            .http
            .post(self.url("/task/upload"))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"size": png.len()}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("upload: {} {}", r.status(), r.text().await?);
        }
        let granted: Value = r.json().await?;
        let url = granted["upload_url"].as_str().unwrap_or_default();
        let mut put = self.http.put(url).body(png.to_vec());
        for (name, value) in granted["headers"].as_object().into_iter().flatten() {
            put = put.header(name.as_str(), value.as_str().unwrap_or_default());
        }
        let r = put.send().await?;
        if !r.status().is_success() {
            bail!("PUT {url}: {} {}", r.status(), r.text().await?);
        }
        Ok(granted["image_key"].as_str().unwrap_or_default().to_owned())
    }

    /// Submits and waits for the result.
    pub async fn run(&self, body: Value) -> anyhow::Result<Value> {
        let id = self.submit(&body).await?;
        self.wait(&id, Duration::from_secs(90)).await
    }

    /// `POST <path>` of a JSON body as this user: the status and the JSON answer (`null`
    /// when the answer is not JSON).
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

/// Sandbox containers of a task that still exist (by the name a step's container takes:
/// `codebox-<task id>-…`).
pub fn containers_of(task_id: &str) -> anyhow::Result<usize> {
    count_containers(task_id, false)
}

/// Sandbox containers of a task whose processes still run.
pub fn running_containers_of(task_id: &str) -> anyhow::Result<usize> {
    count_containers(task_id, true)
}

fn count_containers(task_id: &str, running_only: bool) -> anyhow::Result<usize> {
    let name = format!("name=codebox-{task_id}");
    let mut args = vec![
        "ps",
        "-q",
        "--filter",
        "label=codebox.role=sandbox",
        "--filter",
        &name,
    ];
    if running_only {
        args.extend(["--filter", "status=running"]);
    } else {
        args.push("-a");
    }
    let out = std::process::Command::new("docker")
        .args(&args)
        .output()
        .context("running the docker CLI")?;
    if !out.status.success() {
        bail!("docker ps failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count()
        + oci_sandboxes_of(task_id, running_only)?.len())
}

/// Host pids of the first processes (the agents) of a task's running sandboxes, on
/// every engine: the Docker engine's containers and the OCI engines' (runc, crun, runsc;
/// for runsc the sandbox's own process, which holds the agent).
pub fn sandbox_agent_pids_of(task_id: &str) -> anyhow::Result<Vec<u32>> {
    let name = format!("name=codebox-{task_id}");
    let out = std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", "label=codebox.role=sandbox"])
        .args(["--filter", &name, "--filter", "status=running"])
        .output()
        .context("running the docker CLI")?;
    let mut pids = Vec::new();
    for id in String::from_utf8_lossy(&out.stdout).lines() {
        let out = std::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.Pid}}", id])
            .output()
            .context("running the docker CLI")?;
        if let Ok(pid) = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>() {
            pids.push(pid);
        }
    }
    for c in oci_sandboxes_of(task_id, true)? {
        if let Some(pid) = c["pid"].as_u64().filter(|p| *p > 0) {
            pids.push(pid as u32);
        }
    }
    Ok(pids)
}

/// Containers of the OCI engines (runc, crun, runsc) serving this task (the task is named in
/// their bundle), or only those whose container runs. A bundle a dead worker left without
/// its container is no sandbox (nothing of it runs or holds resources; the reaper removes
/// it later).
fn oci_sandboxes_of(task_id: &str, running_only: bool) -> anyhow::Result<Vec<Value>> {
    use codebox_worker::sandbox::engine::runc::{self as oci, Runtime};
    let mut found = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Runsc, Runtime::Crun] {
        let root = oci::state_root(runtime);
        if !root.exists() {
            continue;
        }
        let serves = |bundle: &str| {
            std::fs::read_to_string(std::path::Path::new(bundle).join(oci::TASK_FILE))
                .is_ok_and(|t| t == task_id)
        };
        // The runtime lists by reading each container's state, and fails when one is
        // deleted as it reads: a few tries.
        let mut tries = 0;
        let out = loop {
            let out = std::process::Command::new(runtime.name())
                .arg("--root")
                .arg(&root)
                .args(["list", "--format", "json"])
                .output()
                .with_context(|| format!("running {}", runtime.name()))?;
            tries += 1;
            if out.status.success() {
                break out;
            }
            if tries == 5 {
                bail!(
                    "{} list failed: {}",
                    runtime.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        found.extend(
            list.as_array()
                .into_iter()
                .flatten()
                .filter(|c| !running_only || c["status"] == "running")
                .filter(|c| c["bundle"].as_str().is_some_and(serves))
                .cloned(),
        );
    }
    Ok(found)
}

/// One Server-Sent Event as a client receives it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub name: String,
    pub data: Value,
    pub at: Instant,
}

/// An open event stream, read one event at a time.
pub struct EventStream {
    response: reqwest::Response,
    parser: codebox_api::events::Parser,
    /// Events parsed and not yet read.
    ready: std::collections::VecDeque<codebox_api::events::Event>,
}

impl EventStream {
    /// The next event, or `None` when the stream has closed. Comments (keep-alives) are
    /// skipped; every `data` must be JSON.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(SseEvent {
                    data: serde_json::from_str(&event.data)?,
                    id: event.id,
                    name: event.event,
                    at: Instant::now(),
                }));
            }
            match self.response.chunk().await? {
                Some(bytes) => self.ready.extend(self.parser.push(&bytes)),
                None => return Ok(None),
            }
        }
    }
}

/// The variable names of every `<runtime> … --root <root> … run` process's environment
/// (`runtime`: `runc`, `runsc`).
pub fn runtime_environments(runtime: &str, root: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = args.first().is_some_and(|a| a.ends_with(runtime))
            && args.iter().any(|a| a == "run")
            && args.iter().any(|a| a == root);
        if !ours {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let names: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| {
                String::from_utf8_lossy(v)
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        // A process that has ended (a zombie) reads as no environment at all.
        if !names.is_empty() {
            found.push(names);
        }
    }
    found
}

/// The OCI runtime (`runc`, `runsc`) of the stack at `addr` runs with an environment of
/// the worker's making (`PATH` alone): none of the worker's variables (its credentials
/// among them) reach it or what it starts. The warm sandboxes' `run` processes are looked
/// at; a test process has many variables (cargo's) that a copied environment would carry.
pub async fn assert_runtime_gets_no_variable_of_the_worker(
    addr: SocketAddr,
    runtime: codebox_worker::sandbox::engine::runc::Runtime,
) {
    Client::new_user(addr)
        .await
        .expect("a user")
        .run(json!({"language": "python", "code": "print(1)"}))
        .await
        .expect("a task");
    let root = codebox_worker::sandbox::engine::runc::state_root(runtime);
    let root = root.to_string_lossy().into_owned();
    // The suite's other tests share the stack and take warm sandboxes as they run: look
    // until some `run` is there (the pool refills within moments), bounded.
    let mut environments = Vec::new();
    for _ in 0..100 {
        environments = runtime_environments(runtime.name(), &root);
        if !environments.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !environments.is_empty(),
        "no {} run of this stack was found",
        runtime.name()
    );
    for mut names in environments {
        // crun runs from a sealed copy of itself (its guard against CVE-2019-5736) and
        // marks the copy by this variable of its own making.
        names.retain(|n| n != "_LIBCONTAINER_CLONED_BINARY");
        assert_eq!(
            names,
            ["PATH"],
            "{}'s environment: {names:?}",
            runtime.name()
        );
    }
}

/// A zip of these files (name, text), base64-encoded as Judge0's `additional_files`.
pub fn zip_base64(files: &[(&str, &str)]) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("a zip entry in memory");
        zip.write_all(text.as_bytes())
            .expect("a zip entry in memory");
    }
    let bytes = zip.finish().expect("a zip in memory").into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

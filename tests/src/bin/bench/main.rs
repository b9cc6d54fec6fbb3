//! `make bench`: starts the embedded stack (or targets `--url`), then measures end-to-end
//! latency of python and C hellos (answered by `wait=true`, and python also by polling the
//! status), the hello of every language `GET /languages` lists (`languages.rs`: p50 and
//! p95 of each, or why it failed), where each task's time went (the stack's stage
//! histograms, `stages.rs`, and a waiting submit's timeline, `timeline.rs`), throughput
//! with 32 concurrent clients, and, in the same run, the baselines they are judged against
//! (`baselines.rs`): a bare `docker run --rm` of the same hello, and a pipeline that does
//! one `docker run --rm` per task at the same concurrency. Also status polling, and the
//! floor: the same `python3` hello run directly on the host, back to back and paced as a
//! waiting client paces its tasks (on a virtual machine an idle CPU is slow to wake and
//! its caches are cold: the paced floor is the one a task meets). The baselines run on
//! gVisor where the sandboxes do (`--runtime runsc`), else on Docker's default runtime
//! (runc and crun alike). Prints a table with the ratios and writes `target/bench/latest.json`.
//!
//! Options: `--url http://host:port` (a running stack), `--out FILE` (the JSON),
//! `--samples N` (default 30), `--per-language-samples N` (default 5, at most 20; 0 skips),
//! `--tasks N` (throughput tasks, default 200), `--clients N` (default 32),
//! `--worker-metrics URL` (a worker's metrics, where they are not the API's: which engine
//! its sandboxes run on).

mod baselines;
mod languages;
mod stages;
mod timeline;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use codebox_tests::Client;
use serde_json::{Value, json};

/// The pause between the paced floor's runs: about a python hello's round trip.
const PACE: Duration = Duration::from_millis(25);

/// Clients of the per-request `docker run` comparison.
const CODAPI_CLIENTS: usize = 8;

struct Args {
    url: Option<String>,
    out: Option<String>,
    samples: usize,
    per_language: usize,
    tasks: usize,
    clients: usize,
    worker_metrics: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        url: None,
        out: None,
        samples: 30,
        per_language: 5,
        tasks: 200,
        clients: 32,
        worker_metrics: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = Some(value()?),
            "--out" => a.out = Some(value()?),
            "--worker-metrics" => a.worker_metrics = Some(value()?),
            "--samples" => a.samples = value()?.parse().context("--samples takes a number")?,
            "--per-language-samples" => {
                a.per_language = value()?
                    .parse()
                    .context("--per-language-samples: a number")?
            }
            "--tasks" => a.tasks = value()?.parse().context("--tasks takes a number")?,
            "--clients" => a.clients = value()?.parse().context("--clients takes a number")?,
            other => bail!("unknown option {other}; see tests/src/bin/bench/main.rs"),
        }
    }
    if a.samples == 0 || a.tasks == 0 || a.clients == 0 {
        bail!("--samples, --tasks and --clients must be at least 1");
    }
    if a.per_language > languages::MAX_SAMPLES {
        bail!(
            "--per-language-samples is at most {}",
            languages::MAX_SAMPLES
        );
    }
    Ok(a)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "n": ms.len(),
        "p50_ms": round(percentile(&ms, 50.0)),
        "p95_ms": round(percentile(&ms, 95.0)),
        "p99_ms": round(percentile(&ms, 99.0)),
        "min_ms": round(ms.first().copied().unwrap_or(f64::NAN)),
        "max_ms": round(ms.last().copied().unwrap_or(f64::NAN)),
    })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How a client learns a task's end.
#[derive(Clone, Copy)]
enum Answer {
    /// `POST /task?wait=true`: one request, answered when the task ends.
    Waiting,
    /// Submit, `GET /status` every 2 ms until it has ended, then `GET /result`.
    Polling,
}

/// What a hello prints.
const HELLO: Option<&str> = Some("hello\n");

/// One task end to end as a client sees it, which must succeed (and print `stdout` when
/// given); returns (end-to-end ms, time inside the worker's run of the task in ms), and
/// adds a waiting submit's segments to `timeline`.
async fn one(
    c: &Client,
    body: &Value,
    answer: Answer,
    stdout: Option<&str>,
    timeline: &mut timeline::Timeline,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let (result, inside) = match answer {
        Answer::Waiting => {
            let sent = chrono::Utc::now();
            let r = c
                .http
                .post(c.url("/task?wait=true&wait_s=25"))
                .bearer_auth(&c.token)
                .json(body)
                .send()
                .await?;
            if r.status() != 200 {
                bail!("a waiting submit answered {}", r.status());
            }
            let task: Value = r.json().await?;
            timeline.add(sent, chrono::Utc::now(), &task);
            let inside = task["duration_ms"].as_f64().unwrap_or(f64::NAN);
            (task["result"].clone(), inside)
        }
        Answer::Polling => {
            let id = c.submit(body).await?;
            let deadline = started + Duration::from_secs(60);
            let status = loop {
                let s = c.status(&id).await?;
                if s["status"]
                    .as_str()
                    .is_some_and(codebox_api::TaskStatus::is_finished_str)
                {
                    break s;
                }
                if Instant::now() > deadline {
                    bail!("task {id} did not finish within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let r = c
                .http
                .get(c.url(&format!("/result/{id}")))
                .bearer_auth(&c.token)
                .send()
                .await?;
            let result: Value = r.json().await?;
            (result, status["duration_ms"].as_f64().unwrap_or(f64::NAN))
        }
    };
    let e2e = started.elapsed().as_secs_f64() * 1000.0;
    if !matches!(result["verdict"].as_str(), Some("ok" | "accepted"))
        || stdout.is_some_and(|out| result["stdout"] != out)
    {
        bail!("a task ended {result}");
    }
    Ok((e2e, inside))
}

/// Runs a measured section between two reads of the stack's stage histograms.
async fn split<F>(
    c: &Client,
    base: &str,
    tasks: usize,
    section: F,
) -> anyhow::Result<(Latency, Value)>
where
    F: std::future::Future<Output = anyhow::Result<Latency>>,
{
    let before = stages::snapshot(&c.http, base).await?;
    let measured = section.await?;
    let after = stages::snapshot(&c.http, base).await?;
    Ok((measured, stages::between(&before, &after, tasks)))
}

/// Summaries of `n` tasks one at a time: end to end, the platform's overhead (end to
/// end less the run) and, for waiting submits, the timeline's segments.
struct Latency {
    e2e: Value,
    overhead: Value,
    timeline: Value,
}

async fn latency(
    c: &Client,
    body: &Value,
    n: usize,
    answer: Answer,
    stdout: Option<&str>,
) -> anyhow::Result<Latency> {
    let mut timeline = timeline::Timeline::default();
    one(c, body, answer, stdout, &mut timeline::Timeline::default()).await?; // warm-up
    let (mut e2e, mut overhead) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (total, inside) = one(c, body, answer, stdout, &mut timeline).await?;
        e2e.push(total);
        overhead.push((total - inside).max(0.0));
    }
    Ok(Latency {
        e2e: summary(e2e),
        overhead: summary(overhead),
        timeline: timeline.summary(),
    })
}

async fn throughput(
    addr: std::net::SocketAddr,
    tasks: usize,
    clients: usize,
) -> anyhow::Result<Value> {
    let mut users = Vec::new();
    for _ in 0..clients {
        users.push(Client::new_user(addr).await?);
    }
    let body = json!({"language": "python", "code": "print('hello')"});
    let started = Instant::now();
    let per = tasks.div_ceil(clients);
    let mut handles = Vec::new();
    for (i, c) in users.into_iter().enumerate() {
        let body = body.clone();
        let count = per.min(tasks.saturating_sub(i * per));
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..count {
                let id = c.submit(&body).await?;
                let r = c.wait(&id, Duration::from_secs(120)).await?;
                if r["verdict"] != "ok" || r["stdout"] != "hello\n" {
                    bail!("task {id} ended {r}");
                }
                ids.push(id);
            }
            // Each of this client's tasks is listed once, finished.
            let list: Value = c
                .http
                .get(c.url("/task?limit=100"))
                .bearer_auth(&c.token)
                .send()
                .await?
                .json()
                .await?;
            let listed = list["items"].as_array().map(Vec::len).unwrap_or(0);
            if listed != ids.len() {
                bail!("client listed {listed} tasks, submitted {}", ids.len());
            }
            anyhow::Ok(ids)
        }));
    }
    let mut all = HashSet::new();
    let mut completed = 0usize;
    for h in handles {
        for id in h.await?? {
            completed += 1;
            all.insert(id);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if all.len() != completed || completed != tasks {
        bail!(
            "{completed} completed, {} distinct, {tasks} submitted",
            all.len()
        );
    }
    Ok(json!({
        "tasks": tasks, "clients": clients, "seconds": round(secs),
        "tasks_per_second": round(tasks as f64 / secs), "lost": 0, "duplicated": 0,
    }))
}

async fn polling(c: &Client, clients: usize, seconds: u64) -> anyhow::Result<Value> {
    let id = c
        .submit(&json!({"language": "python", "code": "print(1)"}))
        .await?;
    c.wait(&id, Duration::from_secs(60)).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for _ in 0..clients {
        let c = c.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = c
                    .http
                    .get(c.url(&format!("/status/{id}")))
                    .bearer_auth(&c.token)
                    .send()
                    .await?;
                if r.status() != 200 {
                    bail!("status answered {}", r.status());
                }
                r.bytes().await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(ms)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let n = all.len();
    let mut s = summary(all);
    s["requests_per_second"] = json!(round(n as f64 / seconds as f64));
    s["clients"] = json!(clients);
    Ok(s)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let a = args()?;
    let image =
        std::env::var("CODEBOX_RUNNER_IMAGE").unwrap_or_else(|_| "codebox-runner:latest".into());
    let (addr, _running) = match &a.url {
        Some(url) => {
            let hostport = url.trim_start_matches("http://").trim_end_matches('/');
            let addr = tokio::net::lookup_host(hostport)
                .await?
                .next()
                .with_context(|| format!("cannot resolve {url}"))?;
            (addr, None)
        }
        None => {
            let running = codebox_tests::start_embedded().await;
            // A service takes tasks long after its start: its warm pool is full by then.
            tokio::time::sleep(Duration::from_secs(2)).await;
            (running.addr, Some(running))
        }
    };
    eprintln!("bench: target http://{addr}");
    let c = Client::new_user(addr).await?;
    let python = json!({"language": "python", "code": "print('hello')"});
    let c_hello =
        json!({"language": "c", "code": "#include <stdio.h>\nint main(void){puts(\"hello\");}"});

    let base = format!("http://{addr}");
    eprintln!("bench: python hello x{}, answered by wait=true", a.samples);
    let (py, py_split) = split(&c, &base, a.samples + 1, async {
        latency(&c, &python, a.samples, Answer::Waiting, HELLO).await
    })
    .await?;
    eprintln!("bench: python hello x{}, polling the status", a.samples);
    let py_polled = latency(&c, &python, a.samples, Answer::Polling, HELLO)
        .await?
        .e2e;
    eprintln!("bench: C hello x{}", a.samples);
    let c_hello = latency(&c, &c_hello, a.samples, Answer::Waiting, HELLO).await?;
    // Judging: one compile, 20 runs, against 20 separate C tasks (compile + run each).
    let c_sum =
        "#include <stdio.h>\nint main(void){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);}";
    let tests: Vec<Value> = (0..20)
        .map(|i| json!({"stdin": format!("{i} {i}"), "expected_stdout": format!("{}", 2 * i)}))
        .collect();
    let judged = json!({"language": "c", "code": c_sum, "tests": tests});
    let judged_samples = (a.samples / 4).max(5);
    eprintln!("bench: C with 20 tests x{judged_samples}");
    let judged_e2e = latency(&c, &judged, judged_samples, Answer::Waiting, None)
        .await?
        .e2e;
    let per_language = match a.per_language {
        0 => json!({}),
        n => languages::hellos(&c, n).await?,
    };
    eprintln!("bench: python3 on the host x{}", a.samples);
    let host = baselines::on_the_host(a.samples, Duration::ZERO)?;
    eprintln!("bench: python3 on the host x{}, {PACE:?} apart", a.samples);
    let paced = baselines::on_the_host(a.samples, PACE)?;
    eprintln!("bench: bare docker run x{}", a.samples.min(20));
    let bare = baselines::bare_docker_run(&image, a.samples.min(20))?;
    eprintln!(
        "bench: throughput, {} tasks from {} clients",
        a.tasks, a.clients
    );
    let (tput, tput_split) = {
        let before = stages::snapshot(&c.http, &base).await?;
        let tput = throughput(addr, a.tasks, a.clients).await?;
        let after = stages::snapshot(&c.http, &base).await?;
        (tput, stages::between(&before, &after, a.tasks))
    };
    eprintln!(
        "bench: docker-run-per-task pipeline, {} tasks from {} clients",
        a.tasks, a.clients
    );
    let pipeline = baselines::docker_run_pipeline(&image, a.tasks, a.clients).await?;
    // As Codapi runs code: one `docker run` per request, here from 8 clients, and
    // codebox from as many.
    eprintln!(
        "bench: {CODAPI_CLIENTS} clients, codebox and one docker run per request, {} tasks each",
        a.tasks
    );
    let few = throughput(addr, a.tasks, CODAPI_CLIENTS).await?;
    let per_request = baselines::docker_run_pipeline(&image, a.tasks, CODAPI_CLIENTS).await?;
    eprintln!("bench: status polling, {} clients for 5 s", a.clients);
    let poll = polling(&c, a.clients, 5).await?;

    let p50 = |v: &Value| v["p50_ms"].as_f64().unwrap_or(f64::NAN);
    let ratio = p50(&py.e2e) / p50(&bare);
    let floor_ratio = p50(&py.e2e) / p50(&host);
    let paced_ratio = p50(&py.e2e) / p50(&paced);
    let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let c_ratio = p50(&c_hello.e2e) / p50(&bare);
    let judged_ratio = p50(&judged_e2e) / (20.0 * p50(&c_hello.e2e));
    let rate = |v: &Value| v["tasks_per_second"].as_f64().unwrap_or(f64::NAN);
    let tput_ratio = rate(&tput) / rate(&pipeline);
    let report = json!({
        "target": format!("http://{addr}"),
        "engine": setting("CODEBOX_SANDBOX_ENGINE").unwrap_or_else(|| "auto".into()),
        "runtime": setting("CODEBOX_SANDBOX_RUNTIME").unwrap_or_else(|| "default".into()),
        // What the worker chose (crun, runc, runsc or docker), read from its metrics.
        "sandboxes_on": engine_in_use(&c, a.worker_metrics.as_deref()).await.unwrap_or_else(|| "unknown".into()),
        "python_hello_on_the_host": host,
        "python_p50_over_host_p50": round(floor_ratio),
        "python_hello_on_the_host_paced": paced,
        "python_p50_over_paced_host_p50": round(paced_ratio),
        "when": codebox_core::time::format(&codebox_core::time::now()),
        "python_hello_e2e": py.e2e,
        "python_hello_platform_overhead": py.overhead,
        "python_hello_timeline": py.timeline,
        "python_hello_e2e_polling": py_polled,
        "python_polling_p50_over_host_p50": round(p50(&py_polled) / p50(&host)),
        "python_hello_stages": py_split,
        "throughput_stages": tput_split,
        "c_hello_e2e": c_hello.e2e,
        "c_hello_platform_overhead": c_hello.overhead,
        "bare_docker_run_python_hello": bare,
        "python_p50_over_bare_docker_run_p50": round(ratio),
        "c_p50_over_bare_docker_run_p50": round(c_ratio),
        "c_20_tests_e2e": judged_e2e,
        "hello_p50_per_language": per_language,
        "c_20_tests_p50_over_20_c_hello_p50": round(judged_ratio),
        "throughput": tput,
        "docker_run_pipeline": pipeline,
        "throughput_over_docker_run_pipeline": round(tput_ratio),
        "throughput_8_clients": few,
        "docker_run_per_request_8_clients": per_request,
        "throughput_8_clients_over_docker_run_per_request": round(rate(&few) / rate(&per_request)),
        "status_polling": poll,
    });
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "end to end (ms)", "p50", "p95", "p99"
    );
    for (name, key) in [
        ("python hello (wait=true)", "python_hello_e2e"),
        ("  platform overhead", "python_hello_platform_overhead"),
        (
            "python hello (status polled / 2 ms)",
            "python_hello_e2e_polling",
        ),
        ("C hello (compile + run)", "c_hello_e2e"),
        ("  platform overhead", "c_hello_platform_overhead"),
        ("C with 20 tests (compiled once)", "c_20_tests_e2e"),
        (
            "bare docker run --rm (python)",
            "bare_docker_run_python_hello",
        ),
        (
            "python3 on the host (the floor)",
            "python_hello_on_the_host",
        ),
        (
            "  the same, one every 25 ms",
            "python_hello_on_the_host_paced",
        ),
        ("GET /status", "status_polling"),
    ] {
        print_row(name, &report[key]);
    }
    languages::print(&report["hello_p50_per_language"]);
    timeline::print(
        "a python hello's timeline (mean of each segment, from the task's timestamps):",
        &report["python_hello_timeline"],
    );
    stages::print(
        "where a python hello's time goes (mean of each stage, one task at a time):",
        &report["python_hello_stages"],
    );
    stages::print(
        "the same under the throughput load:",
        &report["throughput_stages"],
    );
    println!(
        "sandboxes on {} (engine {}, runtime {}; the docker-run baselines on {})",
        report["sandboxes_on"],
        report["engine"],
        report["runtime"],
        baselines::runtime().unwrap_or_else(|| "Docker's default runtime".into())
    );
    println!(
        "python p50 / bare docker run p50: {} (target <= 0.15)",
        report["python_p50_over_bare_docker_run_p50"]
    );
    println!(
        "python p50 / python3 on the host p50: {} (target <= 2); polling the status: {}; / the host's paced: {}",
        report["python_p50_over_host_p50"],
        report["python_polling_p50_over_host_p50"],
        report["python_p50_over_paced_host_p50"]
    );
    println!(
        "C p50 / bare docker run (python) p50: {} (target <= 0.7)",
        report["c_p50_over_bare_docker_run_p50"]
    );
    println!(
        "C with 20 tests p50 / 20 x C hello p50: {} (one compile instead of 20, runs on free slots)",
        report["c_20_tests_p50_over_20_c_hello_p50"]
    );
    println!(
        "throughput: {} tasks/s ({} tasks, {} clients, none lost or duplicated)",
        report["throughput"]["tasks_per_second"], a.tasks, a.clients
    );
    println!(
        "docker-run-per-task pipeline: {} tasks/s; codebox / pipeline: {} (target >= 3)",
        report["docker_run_pipeline"]["tasks_per_second"],
        report["throughput_over_docker_run_pipeline"]
    );
    println!(
        "{CODAPI_CLIENTS} clients: codebox {} tasks/s, one docker run per request (as Codapi) {} tasks/s; ratio {} (target >= 3)",
        report["throughput_8_clients"]["tasks_per_second"],
        report["docker_run_per_request_8_clients"]["tasks_per_second"],
        report["throughput_8_clients_over_docker_run_per_request"]
    );
    println!(
        "status polling: {} req/s",
        report["status_polling"]["requests_per_second"]
    );
    let path = match &a.out {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/latest.json")
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", path.display());
    Ok(())
}

/// One line of the table: a summary's p50, p95 and p99.
fn print_row(name: &str, s: &Value) {
    let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "{name:<34} {:>9.1} {:>9.1} {:>9.1}",
        f("p50_ms"),
        f("p95_ms"),
        f("p99_ms")
    );
}

/// The engine the stack's worker runs its sandboxes on, as its metrics say
/// (`codebox_sandbox_engine_info{engine="…"}`: the API's, or the worker's own at
/// `worker_metrics`); none where they are elsewhere.
async fn engine_in_use(c: &Client, worker_metrics: Option<&str>) -> Option<String> {
    let text = match worker_metrics {
        Some(url) => c.http.get(url).send().await.ok()?.text().await.ok()?,
        None => c.metrics().await.ok()?,
    };
    let line = text
        .lines()
        .find(|l| l.starts_with("codebox_sandbox_engine_info{"))?;
    let rest = line.split_once("engine=\"")?.1;
    Some(rest.split_once('"')?.0.to_owned())
}

//! The `codebox` binary end to end: against the embedded stack (Docker and the runner
//! image required, as for every end-to-end suite), against a port nothing listens on,
//! and against a small scripted server for the live event stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codebox_tests::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on one run of the binary: a compile and a run with room to spare.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A throwaway HOME (and XDG_CONFIG_HOME inside it) with files for the programs.
struct Home(PathBuf);

impl Home {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("codebox-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn config(&self) -> PathBuf {
        self.0.join("xdg").join("codebox").join("config.toml")
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start the binary: its environment (no CODEBOX_* from the caller's).
struct Codebox<'a> {
    home: &'a Home,
    server: String,
    token: Option<String>,
}

impl<'a> Codebox<'a> {
    fn new(home: &'a Home, server: impl std::fmt::Display) -> Self {
        Self {
            home,
            server: server.to_string(),
            token: None,
        }
    }

    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_codebox"));
        cmd.args(args)
            .current_dir(&self.home.0)
            .env("HOME", &self.home.0)
            .env("XDG_CONFIG_HOME", self.home.0.join("xdg"))
            .env("CODEBOX_SERVER", &self.server)
            .env_remove("CODEBOX_TOKEN")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            cmd.env("CODEBOX_TOKEN", token);
        }
        let mut child = cmd.spawn().expect("the codebox binary starts");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
        }
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("codebox {args:?} did not end within {COMMAND_TIMEOUT:?}"))
            .unwrap();
        Run::from(output)
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    stderr_bytes: Vec<u8>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            stderr_bytes: o.stderr,
        }
    }
}

impl Run {
    #[track_caller]
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    /// A failure: nothing on stdout, one `codebox: …` line on stderr; returns the line.
    #[track_caller]
    fn one_line_failure(&self, code: i32) -> String {
        self.exits(code);
        assert_eq!(self.stdout, "", "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        assert!(self.stderr.starts_with("codebox: "), "{self:#?}");
        assert!(self.stderr.ends_with('\n'), "{self:#?}");
        self.stderr.trim_end().to_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn username() -> String {
    format!("cli{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn user(addr: SocketAddr) -> Client {
    Client::new_user(addr).await.unwrap()
}

#[tokio::test]
async fn register_and_login_save_the_token_and_run_prints_hello() {
    let addr = codebox_tests::shared_stack();
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr));
    let name = username();

    let run = cli
        .run_with_stdin(
            &["register", "--username", &name, "--password-stdin"],
            Some("password123\n"),
        )
        .await;
    run.exits(0);
    assert!(
        run.stderr.contains(&format!("registered {name}")),
        "{run:#?}"
    );
    let run = cli
        .run_with_stdin(
            &["login", "-u", &name, "--password-stdin"],
            Some("password123\n"),
        )
        .await;
    run.exits(0);
    assert!(run.stderr.contains("logged in"), "{run:#?}");
    let config = std::fs::read_to_string(home.config()).unwrap();
    assert!(
        config.contains(&format!("username = \"{name}\"")),
        "{config}"
    );
    assert!(config.contains("token = \"ey"), "{config}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.config())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    home.file("hello.py", "print('hello')\n");
    let run = cli.run(&["run", "hello.py"]).await;
    run.exits(0);
    assert_eq!(run.stdout, "hello\n");
    assert!(
        run.stderr.contains("codebox: ok, exit 0, time "),
        "{run:#?}"
    );

    // --json: the final task body and nothing else on stdout.
    let run = cli.run(&["run", "--json", "hello.py"]).await;
    run.exits(0);
    let task = run.json();
    assert_eq!(task["status"], "completed");
    assert_eq!(task["result"]["verdict"], "ok");
    assert_eq!(task["result"]["stdout"], "hello\n");
    let id = task["id"].as_str().unwrap().to_owned();

    // ls: both tasks, newest first.
    let run = cli.run(&["ls"]).await;
    run.exits(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert!(
        lines[0].starts_with("ID") && lines[1].starts_with(&id),
        "{run:#?}"
    );
    assert!(lines[1].contains("completed"), "{run:#?}");
    let run = cli.run(&["ls", "--json", "--limit", "1"]).await;
    assert_eq!(run.json()["items"][0]["id"], id.as_str());
    assert!(run.json()["next_cursor"].is_string(), "{run:#?}");
    assert!(run.stderr.is_empty(), "{run:#?}");
    let run = cli.run(&["ls", "--json", "--limit", "1", "--all"]).await;
    assert_eq!(run.json()["items"].as_array().unwrap().len(), 2);

    // show: figures and output.
    let run = cli.run(&["show", &id]).await;
    run.exits(0);
    assert!(run.stdout.contains("verdict    ok"), "{run:#?}");
    assert!(run.stdout.contains("--- stdout ---\nhello\n"), "{run:#?}");
    let run = cli.run(&["show", "--json", &id]).await;
    assert_eq!(run.json()["result"]["exit_code"], 0);

    // logout forgets the token.
    cli.run(&["logout"]).await.exits(0);
    let line = cli.run(&["ls"]).await.one_line_failure(77);
    assert!(line.contains("not logged in"), "{line}");
}

#[tokio::test]
async fn the_exit_status_is_the_program_s() {
    let addr = codebox_tests::shared_stack();
    let client = user(addr).await;
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr)).token(&client.token);

    home.file(
        "upper.py",
        "import sys\nprint(sys.stdin.read().strip().upper(), sys.argv[1:])\nsys.exit(3)\n",
    );
    home.file("in.txt", "shout\n");
    let run = cli
        .run(&["run", "upper.py", "--stdin", "in.txt", "--", "-a", "b"])
        .await;
    run.exits(3);
    assert_eq!(run.stdout, "SHOUT ['-a', 'b']\n");
    assert!(
        run.stderr.contains("codebox: runtime_error, exit 3"),
        "{run:#?}"
    );

    home.file(
        "segv.py",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    );
    let run = cli.run(&["run", "segv.py"]).await;
    run.exits(128 + 11);
    assert!(run.stderr.contains("killed by SIGSEGV"), "{run:#?}");

    home.file("broken.c", "int main(void) { return }\n");
    let run = cli.run(&["run", "broken.c", "--compiler", "clang"]).await;
    run.exits(125);
    assert!(run.stderr.contains("error"), "{run:#?}");
    assert!(run.stderr.ends_with("codebox: compile_error\n"), "{run:#?}");

    home.file("spin.py", "while True:\n    pass\n");
    let run = cli.run(&["run", "spin.py", "--time-limit", "500ms"]).await;
    run.exits(124);
    assert!(run.stderr.contains("time_limit"), "{run:#?}");

    // Deep recursion (about 40 MB of stack): within the default stack, and past a stack
    // limit made small.
    home.file(
        "deep.cpp",
        "#include <cstdio>\nint depth(int n) { volatile char pad[64]; pad[0] = n & 1; if (n == 0) return 0; return depth(n - 1) + pad[0]; }\nint main() { std::printf(\"%d\\n\", depth(400000)); }\n",
    );
    let run = cli.run(&["run", "deep.cpp"]).await;
    run.exits(0);
    assert_eq!(run.stdout, "200000\n", "{run:#?}");
    let run = cli.run(&["run", "deep.cpp", "--stack-limit", "8M"]).await;
    run.exits(128 + 11);

    // CPU time, compiler options and merged streams, as the API takes them.
    let run = cli
        .run(&[
            "run",
            "spin.py",
            "--cpu-limit",
            "300ms",
            "--time-limit",
            "10s",
        ])
        .await;
    run.exits(124);
    home.file(
        "opts.c",
        "#include <stdio.h>\nint main(void){printf(\"%d\\n\", V);return 0;}\n",
    );
    let run = cli
        .run(&["run", "opts.c", "--compiler-options", "-DV=7 -O0"])
        .await;
    run.exits(0);
    assert_eq!(run.stdout, "7\n", "{run:#?}");
    home.file(
        "both.py",
        "import sys\nprint('a', flush=True)\nprint('b', file=sys.stderr, flush=True)\n",
    );
    let run = cli.run(&["run", "both.py", "--merge-stderr"]).await;
    run.exits(0);
    assert_eq!(run.stdout, "a\nb\n", "{run:#?}");

    // The language from --lang when the extension does not tell it.
    home.file("script", "echo from bash\n");
    cli.run(&["run", "script"]).await.one_line_failure(2);
    let run = cli.run(&["run", "script", "--lang", "bash"]).await;
    run.exits(0);
    assert_eq!(run.stdout, "from bash\n");
}

#[tokio::test]
async fn tests_from_a_folder_are_judged() {
    let addr = codebox_tests::shared_stack();
    let client = user(addr).await;
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr)).token(&client.token);

    home.file("double.py", "print(int(input()) * 2)\n");
    for (name, input, output) in [("a", "1", "2"), ("b", "2", "4"), ("c", "3", "7")] {
        home.file(&format!("cases/{name}.in"), format!("{input}\n"));
        home.file(&format!("cases/{name}.out"), format!("{output}\n"));
    }
    let run = cli.run(&["run", "double.py", "--tests", "cases"]).await;
    run.exits(1);
    assert_eq!(run.stdout, "", "{run:#?}");
    assert!(run.stderr.contains("  a: accepted"), "{run:#?}");
    assert!(run.stderr.contains("  c: wrong_answer"), "{run:#?}");
    assert!(
        run.stderr.contains("line 1: expected \"7\", got \"6\""),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("codebox: passed 2/3 (wrong_answer)"),
        "{run:#?}"
    );

    // All passing: 0; --json prints the task.
    std::fs::remove_file(home.0.join("cases/c.in")).unwrap();
    std::fs::remove_file(home.0.join("cases/c.out")).unwrap();
    let run = cli
        .run(&["run", "double.py", "--tests", "cases", "--json"])
        .await;
    run.exits(0);
    assert_eq!(run.json()["result"]["passed"], 2);

    // A .in without its .out: one line before anything is sent.
    home.file("cases/d.in", "4\n");
    let line = cli
        .run(&["run", "double.py", "--tests", "cases"])
        .await
        .one_line_failure(66);
    assert!(line.ends_with("has no d.out for its d.in"), "{line}");
}

#[tokio::test]
async fn image_filters_write_a_png() {
    let worker = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("codebox-worker");
    assert!(
        worker.exists(),
        "image filters run in the worker binary: build it first (cargo build -p codebox-worker --bin codebox-worker)"
    );
    let addr = codebox_tests::shared_stack();
    let client = user(addr).await;
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr)).token(&client.token);

    let input = image::RgbImage::from_fn(32, 24, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 10) as u8, 200])
    });
    let in_path = home.0.join("in.png");
    input.save(&in_path).unwrap();

    let run = cli
        .run(&[
            "image",
            "in.png",
            "--filter",
            "blur",
            "--sigma",
            "2",
            "-o",
            "blurred.png",
        ])
        .await;
    run.exits(0);
    assert!(run.stderr.contains("blur → blurred.png"), "{run:#?}");
    let blurred = image::open(home.0.join("blurred.png")).unwrap().to_rgb8();
    assert_eq!(blurred.dimensions(), (32, 24));
    assert_ne!(blurred, input, "a blur changes a gradient");

    let run = cli
        .run(&["image", "in.png", "-f", "negative", "-o", "negative.png"])
        .await;
    run.exits(0);
    let negative = image::open(home.0.join("negative.png")).unwrap().to_rgb8();
    assert_eq!(negative.get_pixel(3, 2).0, [255 - 24, 255 - 20, 55]);

    let line = cli
        .run(&[
            "image", "in.png", "-f", "negative", "--sigma", "1", "-o", "x.png",
        ])
        .await
        .one_line_failure(2);
    assert!(line.contains("--sigma is for blur and sharpen"), "{line}");
    let line = cli
        .run(&["image", "missing.png", "-f", "flipx", "-o", "x.png"])
        .await
        .one_line_failure(66);
    assert!(line.contains("missing.png"), "{line}");

    // A PNG too big to send inline on AWS (noise does not compress) goes up first.
    let mut state = 0x9e37_79b9_u32;
    let big = image::RgbImage::from_fn(1000, 800, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    big.save(home.0.join("big.png")).unwrap();
    assert!(std::fs::metadata(home.0.join("big.png")).unwrap().len() > 2_000_000);
    let uploads = || async {
        let text = client.metrics().await.unwrap();
        text.lines()
            .filter(|l| {
                l.contains("route=\"/task/upload/{grant}\"") && l.contains("status=\"204\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = uploads().await;
    let run = cli
        .run(&["image", "big.png", "-f", "flipx", "-o", "flipped.png"])
        .await;
    run.exits(0);
    let flipped = image::open(home.0.join("flipped.png")).unwrap().to_rgb8();
    assert_eq!(flipped.get_pixel(0, 7), big.get_pixel(999, 7));
    assert_eq!(flipped.get_pixel(999, 799), big.get_pixel(0, 799));
    assert_eq!(
        uploads().await,
        before + 1.0,
        "the PNG went through an upload"
    );
}

#[tokio::test]
async fn a_wrong_password_is_one_line() {
    let addr = codebox_tests::shared_stack();
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr));
    let name = username();
    cli.run_with_stdin(
        &["register", "--username", &name, "--password-stdin"],
        Some("password123\n"),
    )
    .await
    .exits(0);
    let run = cli
        .run_with_stdin(
            &["login", "--username", &name, "--password-stdin"],
            Some("password124\n"),
        )
        .await;
    assert_eq!(
        run.one_line_failure(77),
        "codebox: wrong username or password"
    );
    // A token the server does not know.
    let cli = Codebox::new(&home, url(addr)).token("not-a-token");
    let line = cli.run(&["ls"]).await.one_line_failure(77);
    assert!(line.contains("codebox login"), "{line}");
}

#[tokio::test]
async fn an_unreachable_server_is_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = Home::new();
    let server = format!("http://127.0.0.1:{port}");
    let cli = Codebox::new(&home, "http://127.0.0.1:1").token("t");
    let run = cli.run(&["--server", &server, "languages"]).await;
    assert_eq!(
        run.one_line_failure(69),
        format!("codebox: cannot reach {server}: connection refused")
    );
    home.file("hello.py", "print('hello')\n");
    let cli = Codebox::new(&home, &server).token("t");
    let run = cli.run(&["run", "hello.py", "--lang", "python"]).await;
    assert_eq!(
        run.one_line_failure(69),
        format!("codebox: cannot reach {server}: connection refused")
    );
    // What needs no server.
    let run = cli.run(&["completions", "bash"]).await;
    run.exits(0);
    assert!(run.stdout.contains("_codebox"), "{run:#?}");
    let run = cli.run(&["--help"]).await;
    run.exits(0);
    assert!(run.stdout.contains("Exit status:"), "{run:#?}");
    assert!(
        run.stdout
            .contains("125      run: the program did not compile"),
        "{run:#?}"
    );
    let run = cli.run(&["run"]).await;
    run.exits(2);
}

/// Its own stack, where a user may have one task under way: a second is refused with
/// 429 and Retry-After (a count, not a clock window, so the test cannot race a minute).
#[tokio::test]
async fn too_many_requests_is_one_line() {
    let mut config = codebox_embedded::EmbeddedConfig::from_env().unwrap();
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.api.bcrypt_cost = 4;
    config.api.limits = codebox_core::limits::LimitsConfig {
        auth_per_minute: 1_000,
        submit_per_minute: 1_000,
        max_active_tasks: 1,
        ..codebox_core::limits::LimitsConfig::default()
    };
    config.worker.concurrency = 1;
    config.sandbox.pool = Some(0);
    let running = codebox_embedded::start(config).await.unwrap();
    let client = user(running.addr).await;
    let sleeper = client
        .submit(&json!({"language": "python", "code": "import time\ntime.sleep(60)\n"}))
        .await
        .unwrap();

    let home = Home::new();
    home.file("hello.py", "print('hello')\n");
    let cli = Codebox::new(&home, url(running.addr)).token(&client.token);
    let line = cli.run(&["run", "hello.py"]).await.one_line_failure(75);
    assert!(line.starts_with("codebox: too many requests ("), "{line}");
    assert!(line.ends_with(", retry in 2 s"), "{line}");

    cli.run(&["cancel", &sleeper]).await.exits(0);
    running.stop().await;
}

#[tokio::test]
async fn cancel_show_and_languages() {
    let addr = codebox_tests::shared_stack();
    let client = user(addr).await;
    let home = Home::new();
    let cli = Codebox::new(&home, url(addr)).token(&client.token);

    let run = cli.run(&["languages"]).await;
    run.exits(0);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("python       Python")),
        "{run:#?}"
    );
    assert!(run.stdout.contains("gcc "), "{run:#?}");
    let run = cli.run(&["languages", "--json"]).await;
    let listing = run.json();
    let ids: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert!(ids.contains(&"python") && ids.contains(&"cpp"), "{ids:?}");

    let id = client
        .submit(&json!({"language": "python", "code": "import time\ntime.sleep(30)\n"}))
        .await
        .unwrap();
    let run = cli.run(&["cancel", &id]).await;
    run.exits(0);
    assert_eq!(run.stderr, format!("codebox: cancelled {id}\n"));
    let status = client.status(&id).await.unwrap();
    assert_eq!(status["status"], "cancelled");
    let run = cli.run(&["show", &id]).await;
    assert!(run.stdout.contains("status     cancelled"), "{run:#?}");

    // Cancelling it again, or a task that is not there: refused, one line.
    cli.run(&["cancel", &id]).await.one_line_failure(65);
    let line = cli
        .run(&["show", "00000000-0000-4000-8000-000000000000"])
        .await
        .one_line_failure(65);
    assert!(line.contains("not found"), "{line}");
    let run = cli.run(&["cancel", "--json", "nonsense"]).await;
    run.exits(65);
}

/// The webhook key: alone on stdout (how it signs on stderr), the one the API shows the
/// user; where the server signs nothing, one line and a failing exit.
#[tokio::test]
async fn webhook_key_is_printed_or_refused() {
    let running = codebox_tests::start_embedded_with(None, |config| {
        config.api.webhooks.secret = Some(secrecy::SecretString::from(
            "a-webhook-secret-of-at-least-32-characters",
        ));
    })
    .await;
    let client = user(running.addr).await;
    let home = Home::new();
    let cli = Codebox::new(&home, url(running.addr)).token(&client.token);
    let run = cli.run(&["webhook-key"]).await;
    run.exits(0);
    let shown = client.get_json("/webhook/key").await.unwrap();
    assert_eq!(run.stdout, format!("{}\n", shown["key"].as_str().unwrap()));
    assert!(run.stderr.contains("X-Codebox-Signature"), "{run:#?}");
    let run = cli.run(&["webhook-key", "--json"]).await;
    assert_eq!(run.json(), shown);
    running.stop().await;

    let unsigned = codebox_tests::shared_stack();
    let client = user(unsigned).await;
    let cli = Codebox::new(&home, url(unsigned)).token(&client.token);
    let line = cli.run(&["webhook-key"]).await.one_line_failure(65);
    assert!(line.contains("WEBHOOK_SECRET"), "{line}");
}

/// A scripted server for what the embedded stack may not do (yet): live events, a
/// stream that ends early, no stream at all.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Events {
    Full,
    /// Cut after its second event; opened again with `Last-Event-ID`, the rest.
    CutShort,
    /// Cut after its second event however often it is opened.
    AlwaysCut,
    Missing,
}

const TASK: &str = "00000000-0000-4000-8000-0000000000aa";

fn done_body(encoding: &str) -> Value {
    let (stdout, stderr) = if encoding == "base64" {
        ("aGVsbG8K", "/wo=")
    } else {
        ("hello\n", "\u{FFFD}\n")
    };
    json!({
        "id": TASK, "kind": "code", "status": "completed",
        "created_at": "2026-11-22T09:21:18.261Z", "started_at": null, "finished_at": null,
        "duration_ms": 40,
        "result": {"kind": "code", "verdict": "ok", "exit_code": 0, "signal": null,
                   "stdout": stdout, "stderr": stderr, "compile_output": null,
                   "time_ms": 35, "cpu_time_ms": 20, "memory_kb": 9000, "truncated": false,
                   "encoding": encoding}
    })
}

/// When each event stream was opened.
type Openings = Arc<Mutex<Vec<Instant>>>;

async fn scripted_server(events: Events) -> (SocketAddr, Openings) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let openings = Openings::default();
    let opened = openings.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket, events, opened.clone()));
        }
    });
    (addr, openings)
}

async fn answer(mut socket: tokio::net::TcpStream, events: Events, openings: Openings) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = head.lines().next().unwrap_or_default().to_owned();
    let reply = |status: &str, kind: &str, body: String| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let json_type = "application/json";
    let response = if line.starts_with("POST /task ") {
        reply(
            "202 Accepted",
            json_type,
            json!({"id": TASK, "status": "queued"}).to_string(),
        )
    } else if line.starts_with(&format!("GET /task/{TASK}/events ")) {
        openings.lock().unwrap().push(Instant::now());
        if events == Events::Missing {
            reply(
                "404 Not Found",
                "application/problem+json",
                json!({"title": "Not Found", "status": 404, "detail": "no route"}).to_string(),
            )
        } else {
            let last: u64 = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("last-event-id:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let frames = [
                "id: 1\nevent: status\ndata: {\"status\":\"running\"}\n\n".to_owned(),
                "id: 2\nevent: stdout\ndata: {\"data\":\"hel\",\"attempt\":1}\n\n".to_owned(),
                "id: 3\nevent: stdout\ndata: {\"data\":\"lo\\n\"}\n\n".to_owned(),
                "id: 4\nevent: stderr\ndata: {\"data\":\"/wo=\",\"encoding\":\"base64\"}\n\n"
                    .to_owned(),
                format!("event: done\ndata: {}\n\n", done_body("utf-8")),
            ];
            // The server's part: the events after the client's last, cut where asked.
            let upto = match events {
                Events::CutShort if last == 0 => 2,
                Events::AlwaysCut => 2,
                _ => frames.len(),
            };
            let mut stream = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
            );
            let after = usize::try_from(last).unwrap().min(upto);
            let (now, rest) = frames[after..upto].split_at(1.min(upto - after));
            stream.push_str(&now.concat());
            socket.write_all(stream.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let rest = format!(": keep-alive\n\n{}", rest.concat());
            let _ = socket.write_all(rest.as_bytes()).await;
            let _ = socket.shutdown().await;
            return;
        }
    } else if line.starts_with(&format!("GET /task/{TASK}?encoding=base64 ")) {
        reply("200 OK", json_type, done_body("base64").to_string())
    } else {
        reply("404 Not Found", json_type, "{}".to_owned())
    };
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Output is printed as it streams, once: a stream cut short is opened again after the
/// last event it had; one that keeps breaking, or is missing, falls back to polling and
/// prints what was not shown yet, byte for byte. A stream is opened again after a pause
/// that doubles (0.25, 0.5, 1 s), never at once.
#[tokio::test]
async fn live_output_is_printed_once() {
    let home = Home::new();
    home.file("hello.py", "print('hello')\n");
    for events in [
        Events::Full,
        Events::CutShort,
        Events::AlwaysCut,
        Events::Missing,
    ] {
        let (addr, openings) = scripted_server(events).await;
        let cli = Codebox::new(&home, url(addr)).token("t");
        let run = cli.run(&["run", "hello.py", "--lang", "python"]).await;
        run.exits(0);
        let opened = openings.lock().unwrap().clone();
        let expected = match events {
            Events::Full | Events::Missing => 1,
            Events::CutShort => 2,
            Events::AlwaysCut => 4,
        };
        assert_eq!(opened.len(), expected, "{events:?}: streams opened");
        for (n, pair) in opened.windows(2).enumerate() {
            let pause = pair[1] - pair[0];
            let at_least = Duration::from_millis(250 << n);
            assert!(
                pause >= at_least,
                "{events:?}: opened again after {pause:?}, not {at_least:?}"
            );
        }
        assert_eq!(run.stdout, "hello\n", "{events:?}: {run:#?}");
        assert!(
            run.stderr_bytes.starts_with(b"\xff\n"),
            "{events:?}: {run:#?}"
        );
        assert!(
            run.stderr
                .ends_with("codebox: ok, exit 0, time 35 ms, cpu 20 ms, memory 8.8 MiB\n"),
            "{events:?}: {run:#?}"
        );
    }
}

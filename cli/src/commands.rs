//! The commands.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use base64::Engine;
use clap::CommandFactory;
use http::Method;
use serde_json::{Map, Value, json};

use codebox_api::{ResultView, Verdict};

use crate::api::{Api, Language, TaskView, path_segment};
use crate::args::{Cli, Command, Credentials, ImageArgs, LsArgs, RunArgs};
use crate::config::{self, Config, Settings};
use crate::fail::{Fail, Result, code, io_reason};
use crate::follow::{self, Options};
use crate::output::{self, kib, ms, say};
use crate::{lang, report, testdir};

/// Runs the command; the exit status on success.
pub async fn dispatch(cli: Cli) -> Result<u8> {
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "codebox", &mut script);
        output::stdout(&script)?;
        return Ok(0);
    }
    let settings = Settings::from_env(cli.server.as_deref())?;
    let api = Api::new(settings.server.clone(), settings.token.clone())?;
    let json = cli.json;
    match cli.command {
        Command::Login(creds) => login(&api, &settings, creds, false, json).await,
        Command::Register(creds) => login(&api, &settings, creds, true, json).await,
        Command::Logout => logout(&api, &settings).await,
        Command::Run(args) => run(&api, args, json).await,
        Command::Image(args) => image(&api, args, json).await,
        Command::Ls(args) => ls(&api, args, json).await,
        Command::Show { id } => show(&api, &id, json).await,
        Command::Cancel { id } => cancel(&api, &id, json).await,
        Command::Languages => languages(&api, json).await,
        Command::WebhookKey => webhook_key(&api, json).await,
        Command::Completions { .. } => Ok(0),
    }
}

async fn login(
    api: &Api,
    settings: &Settings,
    creds: Credentials,
    register: bool,
    json: bool,
) -> Result<u8> {
    let path = settings.config_path.clone().ok_or_else(|| {
        Fail::new(
            code::CONFIG,
            "no place for the config file: set HOME or XDG_CONFIG_HOME",
        )
    })?;
    let (username, password) = read_credentials(creds)?;
    let body = json!({"username": username, "password": password});
    if register {
        let _: Value = api.post_json("/register", &body, false).await?;
        say(format!("codebox: registered {username} on {}", api.server));
    }
    let answer: Value = api.post_json("/login", &body, false).await?;
    let token = answer["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Fail::unavailable(format!("{} answered the login without a token", api.server))
        })?;
    let config = Config {
        server: Some(api.server.clone()),
        username: Some(username.clone()),
        token: Some(token.to_owned()),
    };
    config::save(&path, &config)?;
    if json {
        // The answer without the token: it is in the file, not for a terminal or a log.
        output::json(&json!({
            "server": api.server,
            "username": username,
            "config": path.display().to_string(),
            "expires_in": answer["expires_in"],
        }))?;
    }
    say(format!(
        "codebox: logged in to {} as {username} (token saved in {})",
        api.server,
        path.display()
    ));
    Ok(0)
}

/// The username (given or asked for) and the password (from stdin's first line or asked
/// for without echo).
fn read_credentials(creds: Credentials) -> Result<(String, String)> {
    let username = match creds.username {
        Some(u) => u,
        None if creds.password_stdin => {
            return Err(Fail::usage("--password-stdin needs --username"));
        }
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(Fail::usage(
                    "no terminal to ask for a username: pass --username",
                ));
            }
            output::stderr(b"Username: ");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Fail::input(format!("cannot read the username: {}", io_reason(&e))))?;
            line.trim().to_owned()
        }
    };
    if username.is_empty() {
        return Err(Fail::usage("the username is empty"));
    }
    let password = if creds.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Fail::input(format!(
                "cannot read the password from stdin: {}",
                io_reason(&e)
            ))
        })?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        rpassword::prompt_password("Password: ").map_err(|_| {
            Fail::usage("no terminal to ask for the password: pass --password-stdin")
        })?
    };
    if password.is_empty() {
        return Err(Fail::usage("the password is empty"));
    }
    Ok((username, password))
}

async fn logout(api: &Api, settings: &Settings) -> Result<u8> {
    let request = api.request(Method::POST, "/logout", true)?;
    api.send(request, true).await?;
    // The saved token is forgotten when it is the one just revoked.
    if let Some(path) = &settings.config_path
        && settings.config.token.is_some()
        && settings.config.token == settings.token
    {
        let config = Config {
            token: None,
            ..settings.config.clone()
        };
        config::save(path, &config)?;
    }
    say(format!("codebox: logged out of {}", api.server));
    Ok(0)
}

async fn run(api: &Api, args: RunArgs, json: bool) -> Result<u8> {
    let code_text = testdir::read_text(&args.file)?;
    let language = match args.lang {
        Some(l) => l,
        None => {
            let available: Vec<String> = api.languages().await?.into_iter().map(|l| l.id).collect();
            lang::language_of(&args.file, &available).map_err(Fail::usage)?
        }
    };
    let cases = args.tests.as_deref().map(testdir::read).transpose()?;
    let mut body = Map::new();
    body.insert("language".into(), json!(language));
    body.insert("code".into(), json!(code_text));
    if let Some(path) = &args.stdin {
        body.insert("stdin".into(), json!(read_stdin_file(path)?));
    }
    if !args.args.is_empty() {
        body.insert("args".into(), json!(args.args));
    }
    if let Some(c) = args.compiler {
        body.insert("compiler".into(), json!(c.id()));
    }
    if let Some(options) = &args.compiler_options {
        body.insert("compiler_options".into(), json!(options));
    }
    if args.merge_stderr {
        body.insert("merge_stderr".into(), json!(true));
    }
    let mut limits = Map::new();
    if let Some(t) = args.time_limit {
        limits.insert("time_ms".into(), json!(t));
    }
    if let Some(m) = args.memory_limit {
        limits.insert("memory_mb".into(), json!(m));
    }
    if let Some(m) = args.stack_limit {
        limits.insert("stack_mb".into(), json!(m));
    }
    if let Some(t) = args.cpu_limit {
        limits.insert("cpu_ms".into(), json!(t));
    }
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    if let Some(cases) = &cases {
        let tests: Vec<Value> = cases
            .iter()
            .map(|c| json!({"stdin": c.stdin, "expected_stdout": c.expected_stdout}))
            .collect();
        body.insert("tests".into(), Value::Array(tests));
    }
    let id = submit(api, &Value::Object(body)).await?;
    let options = Options {
        live: !json,
        spinner: !json,
        exact: !json,
        cases: cases.clone().unwrap_or_default(),
    };
    let outcome = follow::follow(api, &id, &options).await?;
    let mut task = task_view(&outcome.body)?;
    if json {
        output::json(&outcome.body)?;
        let r = report::code_result(&task)?;
        return Ok(match &cases {
            Some(_) if r.verdict == Verdict::Accepted => 0,
            Some(_) => code::NOT_ACCEPTED,
            None => report::exit_status(r),
        });
    }
    // A stream that carried no output ends with the text form: get the exact bytes.
    let lossy = |t: &TaskView| {
        matches!(&t.result, Some(ResultView::Code(r))
            if !r.base64() && (r.stdout.contains('\u{FFFD}') || r.stderr.contains('\u{FFFD}')))
    };
    if outcome.streamed.stdout == 0 && outcome.streamed.stderr == 0 && lossy(&task) {
        let path = format!("/task/{}?encoding=base64", path_segment(&id));
        task = task_view(&api.get_json(&path, true).await?)?;
    }
    report::run(&task, &outcome.streamed, cases.as_deref())
}

fn read_stdin_file(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Fail::input(format!("cannot read stdin: {}", io_reason(&e))))?;
        return String::from_utf8(bytes).map_err(|_| Fail::input("stdin is not UTF-8 text"));
    }
    testdir::read_text(path)
}

/// `POST /task`; the new task's id.
async fn submit(api: &Api, body: &Value) -> Result<String> {
    let accepted: Value = api.post_json("/task", body, true).await?;
    accepted["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Fail::unavailable(format!("{} accepted the task without an id", api.server)))
}

fn task_view(body: &Value) -> Result<TaskView> {
    serde_json::from_value(body.clone())
        .map_err(|e| Fail::unavailable(format!("unexpected task from the server: {e}")))
}

/// PNGs larger than this are uploaded (`POST /task/upload`) rather than sent inline: under
/// the inline limit of every deployment (3 000 000 bytes on AWS).
const INLINE_IMAGE_MAX: usize = 2_000_000;

async fn image(api: &Api, args: ImageArgs, json: bool) -> Result<u8> {
    if args.sigma.is_some() && !args.filter.takes_sigma() {
        return Err(Fail::usage(format!(
            "--sigma is for blur and sharpen, not {}",
            args.filter.id()
        )));
    }
    let to_stdout = args.output == Path::new("-");
    if to_stdout && json {
        return Err(Fail::usage("--json prints on stdout: give -o a file"));
    }
    let png = std::fs::read(&args.input).map_err(|e| {
        Fail::input(format!(
            "cannot read {}: {}",
            args.input.display(),
            io_reason(&e)
        ))
    })?;
    let mut filter = json!({"name": args.filter.id()});
    if let Some(sigma) = args.sigma {
        filter["parameters"] = json!({"sigma": sigma});
    }
    let body = if png.len() > INLINE_IMAGE_MAX {
        // Too big to travel inside a request everywhere (a Lambda invocation carries
        // 6 MB): uploaded first.
        let key = api.upload_png(png).await?;
        json!({"kind": "image", "image_key": key, "filter": filter})
    } else {
        json!({
            "kind": "image",
            "image_base64": base64::engine::general_purpose::STANDARD.encode(&png),
            "filter": filter,
        })
    };
    let id = submit(api, &body).await?;
    let options = Options {
        live: false,
        spinner: !json,
        exact: false,
        cases: Vec::new(),
    };
    let outcome = follow::follow(api, &id, &options).await?;
    let task = task_view(&outcome.body)?;
    let (image, why) = match report::finished_result(&task)? {
        ResultView::Image(r) => (
            r.image_base64.as_deref(),
            r.error.clone().unwrap_or_else(|| r.verdict.to_string()),
        ),
        ResultView::Code(r) => (None, format!("a program's result ({})", r.verdict)),
    };
    let out = image
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| Fail::unavailable(format!("task {id} ended without an image: {why}")))?;
    if to_stdout {
        output::stdout(&out)?;
    } else {
        write_file(&args.output, &out)?;
    }
    if json {
        output::json(&outcome.body)?;
    } else {
        say(format!(
            "codebox: {} → {} ({}, {})",
            args.filter.id(),
            args.output.display(),
            kib(u64::try_from(out.len()).unwrap_or(u64::MAX).div_ceil(1024)),
            task.status
                .duration_ms
                .and_then(|d| u64::try_from(d).ok())
                .map(ms)
                .unwrap_or_default()
        ));
    }
    Ok(0)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| {
            Fail::new(
                code::CANNOT_WRITE,
                format!("cannot write {}: {}", path.display(), io_reason(&e)),
            )
        })
}

async fn ls(api: &Api, args: LsArgs, json: bool) -> Result<u8> {
    let mut cursor = args.cursor.clone();
    let mut items: Vec<Value> = Vec::new();
    let next = loop {
        let mut path = format!("/task?limit={}", args.limit);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", query_value(c)));
        }
        let page: Value = api.get_json(&path, true).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        let next = page["next_cursor"].as_str().map(str::to_owned);
        match next {
            Some(n) if args.all => cursor = Some(n),
            next => break next,
        }
    };
    if json {
        output::json(&json!({"items": items, "next_cursor": next}))?;
        return Ok(0);
    }
    let mut out = format!(
        "{:<36}  {:<5}  {:<9}  {:<24}  {}\n",
        "ID", "KIND", "STATUS", "CREATED", "DURATION"
    );
    for item in &items {
        let text = |k: &str| item[k].as_str().unwrap_or("-").to_owned();
        let duration = item["duration_ms"]
            .as_u64()
            .map(ms)
            .unwrap_or_else(|| "-".to_owned());
        out.push_str(&format!(
            "{:<36}  {:<5}  {:<9}  {:<24}  {duration}\n",
            text("id"),
            text("kind"),
            text("status"),
            text("created_at"),
        ));
    }
    output::stdout(out.as_bytes())?;
    if let Some(next) = next {
        say(format!("codebox: more with `codebox ls --cursor {next}`"));
    }
    Ok(0)
}

/// A query string value (cursors are `<ms>.<uuid>`; anything else is escaped).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn show(api: &Api, id: &str, json: bool) -> Result<u8> {
    let body: Value = api
        .get_json(&format!("/task/{}", path_segment(id)), true)
        .await?;
    if json {
        output::json(&body)?;
    } else {
        report::show(&task_view(&body)?)?;
    }
    Ok(0)
}

async fn cancel(api: &Api, id: &str, json: bool) -> Result<u8> {
    api.cancel(id).await?;
    if json {
        output::json(&json!({"id": id, "cancelled": true}))?;
    }
    say(format!("codebox: cancelled {id}"));
    Ok(0)
}

async fn webhook_key(api: &Api, json: bool) -> Result<u8> {
    let body: Value = api.get_json("/webhook/key", true).await?;
    if json {
        output::json(&body)?;
        return Ok(0);
    }
    let key = body["key"].as_str().unwrap_or_default();
    let scheme = body["scheme"].as_str().unwrap_or_default();
    output::stdout(format!("{key}\n").as_bytes())?;
    say(format!("codebox: {scheme}"));
    Ok(0)
}

async fn languages(api: &Api, json: bool) -> Result<u8> {
    if json {
        let body: Value = api.get_json("/languages", false).await?;
        output::json(&body)?;
        return Ok(0);
    }
    let list: Vec<Language> = api.languages().await?;
    let mut out = format!(
        "{:<12} {:<12} {:<10} {}\n",
        "ID", "NAME", "VERSION", "COMPILERS"
    );
    for l in &list {
        let compilers = l
            .compilers
            .iter()
            .map(|c| match &c.version {
                Some(v) => format!("{} {v}", c.id),
                None => c.id.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "{:<12} {:<12} {:<10} {compilers}\n",
            l.id,
            l.name,
            l.version.as_deref().unwrap_or("-"),
        ));
    }
    output::stdout(out.as_bytes())?;
    Ok(0)
}

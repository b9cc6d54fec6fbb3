//! Every language of the table, end to end on the embedded stack: hello, stdin echo, a
//! runtime error, a time limit, and for compiled ones a compile error (with each
//! compiler); and hello through the Judge0 layer by each of its Judge0 ids. A language added to the table without programs (`tests/src/programs.rs`)
//! fails the first test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use codebox_core::languages::LANGUAGES;
use codebox_tests::programs::{multi_file, programs};
use codebox_tests::{Client, start_embedded};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_runs_reads_fails_and_times_out() {
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    // (what, body, check) for every language, submitted together, then waited for.
    type Check = Box<dyn Fn(&Value) -> bool>;
    let mut cases: Vec<(String, Value, Check)> = Vec::new();
    for l in LANGUAGES {
        let p = programs(l.id).unwrap_or_else(|| {
            panic!(
                "no programs for {}: add them to tests/src/programs.rs",
                l.id
            )
        });
        let compilers: Vec<Option<&str>> = if l.compilers().is_empty() {
            vec![None]
        } else {
            l.compilers().iter().map(|c| Some(c.as_str())).collect()
        };
        for compiler in compilers {
            // A JVM's start on a busy machine's one CPU can take seconds: the time limit
            // is not what these cases test (but for the endless loop's, below).
            let body = |code: &str| {
                let mut b = json!({"language": l.id, "code": code, "limits": {"time_ms": 15000}});
                if l.id == "multifile" {
                    multi_file(&mut b, code);
                }
                if let Some(cc) = compiler {
                    b["compiler"] = json!(cc);
                }
                b
            };
            let name = |what: &str| format!("{}/{}: {what}", l.id, compiler.unwrap_or("-"));
            cases.push((
                name("hello"),
                body(p.hello),
                Box::new(|r| r["verdict"] == "ok" && r["stdout"] == "hello\n"),
            ));
            if let Some(echo) = p.echo {
                let mut echo = body(echo);
                echo["stdin"] = json!("a line of input\n");
                cases.push((
                    name("stdin echo"),
                    echo,
                    Box::new(|r| r["verdict"] == "ok" && r["stdout"] == "a line of input\n"),
                ));
            }
            if let Some(exit3) = p.exit3 {
                cases.push((
                    name("runtime error"),
                    body(exit3),
                    Box::new(|r| r["verdict"] == "runtime_error" && r["exit_code"] == 3),
                ));
            }
            if let Some(forever) = p.forever {
                let mut forever = body(forever);
                forever["limits"] = json!({"time_ms": 1000});
                cases.push((
                    name("time limit"),
                    forever,
                    Box::new(|r| r["verdict"] == "time_limit"),
                ));
            }
            assert_eq!(
                p.broken.is_some(),
                l.compiled(),
                "{}: a compile error",
                l.id
            );
            if let Some(broken) = p.broken {
                cases.push((
                    name("compile error"),
                    body(broken),
                    Box::new(|r| {
                        r["verdict"] == "compile_error"
                            && r["compile_output"].as_str().is_some_and(|o| !o.is_empty())
                    }),
                ));
            }
        }
    }
    // A multi-file program without a compile script: its `run` alone, beside its files.
    cases.push((
        "multifile/-: run alone".to_owned(),
        json!({"language": "multifile", "code": "cat greeting.txt", "files": [
            {"path": "greeting.txt", "content": "hello\n"},
        ]}),
        Box::new(|r| {
            r["verdict"] == "ok" && r["stdout"] == "hello\n" && r["compile_output"].is_null()
        }),
    ));
    let mut ids = Vec::new();
    for (_, body, _) in &cases {
        ids.push(c.submit(body).await.unwrap());
    }
    // And through the Judge0 layer, by each Judge0 id (89, the multi-file program, is its
    // zip: `judge0_sdk.rs`), queued with the rest.
    let mut judge0 = Vec::new();
    for l in LANGUAGES.iter().filter(|l| l.id != "multifile") {
        let hello = programs(l.id).unwrap().hello;
        for (id, _) in l.judge0 {
            let r = c
                .http
                .post(c.url("/judge0/submissions"))
                .header("x-auth-token", &c.token)
                .json(&json!({"source_code": hello, "language_id": id, "wall_time_limit": 15}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "judge0 {id} ({})", l.id);
            let token = r.json::<Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
            judge0.push((*id, l.id, token));
        }
    }
    let mut failures = Vec::new();
    for ((what, _, check), id) in cases.iter().zip(&ids) {
        let r = c.wait(id, Duration::from_secs(180)).await.unwrap();
        if !check(&r) {
            failures.push(format!("{what}: {r}"));
        }
    }
    for (id, language, token) in &judge0 {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let shown = loop {
            let shown: Value = c
                .http
                .get(c.url(&format!(
                    "/judge0/submissions/{token}?fields=status_id,stdout,compile_output"
                )))
                .header("x-auth-token", &c.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if shown["status_id"].as_u64().is_some_and(|s| s >= 3)
                || std::time::Instant::now() > deadline
            {
                break shown;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if shown["status_id"] != 3 || shown["stdout"] != "hello\n" {
            failures.push(format!("judge0 {id} ({language}): hello: {shown}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Each version as the runner image has it (reported by the worker once it is up).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let langs: Value = loop {
        let langs: Value = c.get_json("/languages").await.unwrap();
        let all = langs
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["version"].is_string());
        if all || std::time::Instant::now() > deadline {
            break langs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for l in LANGUAGES {
        let listed = langs
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == l.id)
            .unwrap_or_else(|| panic!("{} not listed", l.id));
        assert!(
            listed["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{listed}"
        );
    }
    running.stop().await;
}

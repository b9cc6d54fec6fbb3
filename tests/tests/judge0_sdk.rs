//! The official `judge0` Python SDK (PyPI, pinned in scripts/ensure-tools.sh), unchanged,
//! against the embedded stack's `/judge0` API: `tests/judge0/sdk_check.py` runs python and
//! C with and without test cases, `async_run` + `wait`, a batch, and each failure status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_tests::{Client, start_embedded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_judge0_sdk_works_unchanged() {
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("judge0/sdk_check.py");
    let url = format!("http://{}/judge0", running.addr);
    let token = c.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("JUDGE0_URL", url)
            .env("JUDGE0_TOKEN", token)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("every check passed"), "{stdout}");
    running.stop().await;
}

/// The bodies other Judge0 clients send, unchanged, as Judge0 1.13.1 answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_other_judge0_clients_send_is_taken_as_judge0_takes_it() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{Value, json};
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    let url = |path: &str| format!("http://{}/judge0{path}", running.addr);
    let post = |path: &str, body: Value| {
        c.http
            .post(url(path))
            .header("X-Auth-Token", &c.token)
            .json(&body)
            .send()
    };
    let b64 = |s: &str| STANDARD.encode(s);
    let text =
        |v: &Value| String::from_utf8(STANDARD.decode(v.as_str().unwrap_or("")).unwrap()).unwrap();

    // judge0/ide: base64, wait, empty compiler options and arguments, stderr merged.
    let r = post(
        "/submissions?base64_encoded=true&wait=true",
        json!({"source_code": b64("import sys\nprint('out')\nprint('err', file=sys.stderr)"),
               "language_id": 71, "stdin": b64(""), "compiler_options": "",
               "command_line_arguments": "", "redirect_stderr_to_stdout": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(text(&v["stdout"]), "out\nerr\n", "{v}");
    assert_eq!(v["stderr"], Value::Null, "{v}");

    // Rails' leniency: numbers as strings, nulls for defaults, `wait=1`.
    let r = post(
        "/submissions?wait=1",
        json!({"source_code": "print(6 * 7)", "language_id": "71", "cpu_time_limit": "2",
               "memory_limit": null, "stack_limit": "", "enable_network": "false"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stdout"], "42\n", "{v}");

    // A form-encoded body.
    let r = c
        .http
        .post(url("/submissions?wait=true"))
        .header("X-Auth-Token", &c.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("source_code=print%28%27form%27%29&language_id=71")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stdout"], "form\n", "{v}");

    // cpu_time_limit is CPU time: sleeping past it is Accepted (wall limit 10 s).
    let r = post(
        "/submissions?wait=true&fields=status,time,wall_time",
        json!({"source_code": "import time\ntime.sleep(1.5)", "language_id": 71, "cpu_time_limit": 1}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");

    // max_file_size is 1 024 KB by default: 200 000 bytes of output are Accepted.
    let r = post(
        "/submissions?wait=true&fields=status,stdout",
        json!({"source_code": "print('x' * 200000)", "language_id": 71}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["stdout"].as_str().unwrap().len(), 200_001);

    // Compiler options reach the compiler; a compile's warnings are kept.
    let r = post(
        "/submissions?wait=true&fields=status,stdout,compile_output",
        json!({"source_code": "#include <stdio.h>\nint main(void){int unused; printf(\"%d\\n\", X); return 0;}",
               "language_id": 50, "compiler_options": "-DX=5 -Wall"}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["stdout"], "5\n", "{v}");
    assert!(
        v["compile_output"]
            .as_str()
            .unwrap_or("")
            .contains("unused"),
        "{v}"
    );
    let r = post(
        "/submissions",
        json!({"source_code": "print(1)", "language_id": 71, "compiler_options": "-O2"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"compiler_options": ["setting compiler options is only allowed for compiled languages"]}),
        "Judge0's shape: the reasons by field"
    );

    let get = |path: &str| {
        c.http
            .get(url(path))
            .header("X-Auth-Token", &c.token)
            .send()
    };

    // Output that is not UTF-8, asked for without base64: Judge0's error, not altered text.
    let r = post(
        "/submissions?wait=true",
        json!({"source_code": "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')", "language_id": 71}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let not_utf8 = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
    assert_eq!(v["error"], not_utf8, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let r = get(&format!("/submissions/{token}")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], not_utf8);
    let v: Value = get(&format!("/submissions/{token}?base64_encoded=true"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        STANDARD.decode(v["stdout"].as_str().unwrap()).unwrap(),
        b"\xff\xfe ok\n"
    );
    let v: Value = get(&format!("/submissions/{token}?fields=status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["status"]["id"], 3,
        "a field that is text only when asked for: {v}"
    );

    // A batch of 21 is Judge0's 400.
    let item = json!({"source_code": "print(1)", "language_id": 71});
    let r = post("/submissions/batch", json!({"submissions": vec![item; 21]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": "number of submissions in a batch should be less than or equal to 20"})
    );
    // A batch of which nothing is taken is Judge0's 422, each item its reasons.
    let r = post(
        "/submissions/batch",
        json!({"submissions": [{"source_code": "print(1)", "language_id": 9999}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v[0]["language_id"][0], "language with id 9999 doesn't exist",
        "{v}"
    );

    // The routes Judge0 clients call besides submissions.
    let r = get("/version").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "1.13.1");
    let all: Value = get("/languages/all").await.unwrap().json().await.unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == 71 && l["is_archived"] == false)
    );
    // Judge0's languages whose toolchains Debian ships, each listed; plain text named as
    // Judge0 names it; one of them end to end, as a Judge0 client sends it.
    let listed = all.as_array().unwrap();
    for id in [
        43, 45, 55, 56, 57, 58, 59, 65, 66, 67, 69, 77, 79, 80, 81, 82, 86, 88,
    ] {
        assert!(listed.iter().any(|l| l["id"] == id), "{id} in {all}");
    }
    assert!(
        listed
            .iter()
            .any(|l| l["id"] == 43 && l["name"] == "Plain Text"),
        "{all}"
    );
    let r = post(
        "/submissions?wait=true",
        json!({"source_code": "SELECT 6 * 7;", "language_id": 82, "expected_output": "42"}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");
    // A multi-file program (89), as Judge0 takes one: no source code, a zip with a
    // `compile` script, a C file and a `run` script; its arguments ignored, as Judge0's.
    assert!(
        listed
            .iter()
            .any(|l| l["id"] == 89 && l["name"] == "Multi-file program"),
        "{all}"
    );
    let project = codebox_tests::zip_base64(&[
        ("compile", "gcc -O2 -o greet src/greet.c\n"),
        (
            "src/greet.c",
            "#include <stdio.h>\nint main(int c, char **v){printf(\"hello %d\\n\", c);return 0;}\n",
        ),
        ("run", "./greet\n"),
    ]);
    let r = post(
        "/submissions?wait=true",
        json!({"language_id": 89, "additional_files": project, "command_line_arguments": "x y",
               "expected_output": "hello 1"}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["source_code"], Value::Null, "{v}");
    for (body, field, reason) in [
        (
            json!({"language_id": 89, "source_code": "echo hi", "additional_files": project}),
            "source_code",
            "must be blank",
        ),
        (
            json!({"language_id": 89}),
            "additional_files",
            "can't be blank",
        ),
        (json!({"language_id": 71}), "source_code", "can't be blank"),
        (
            json!({"language_id": 89, "additional_files": codebox_tests::zip_base64(&[("compile", "true")])}),
            "additional_files",
            "must hold the script `run` at the zip's root",
        ),
        (
            json!({"language_id": 89, "additional_files": project, "compiler_options": "-O3"}),
            "compiler_options",
            "setting compiler options is only allowed for compiled languages",
        ),
    ] {
        let r = post("/submissions", body.clone()).await.unwrap();
        assert_eq!(r.status(), 422, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({ field: [reason] }), "{body}");
    }
    let info: Value = get("/system_info").await.unwrap().json().await.unwrap();
    assert!(
        info["CPU(s)"].is_string() && info["Mem"].is_string(),
        "{info}"
    );
    let r = c
        .http
        .post(url("/authenticate"))
        .header("X-Auth-Token", &c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .http
        .post(url("/authenticate"))
        .header("X-Auth-Token", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "", "Judge0's bare 401");
    let r = c
        .http
        .post(url("/authorize"))
        .header("X-Auth-Token", &c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The caller's own submissions, newest first, paged as Judge0 pages them.
    let listed: Value = get("/submissions?per_page=2&page=1&fields=token,status")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = listed["submissions"].as_array().unwrap();
    assert_eq!(mine.len(), 2, "{listed}");
    let meta = &listed["meta"];
    assert_eq!(meta["current_page"], 1, "{listed}");
    assert_eq!(meta["next_page"], 2, "{listed}");
    assert_eq!(meta["prev_page"], Value::Null, "{listed}");
    let total = meta["total_count"].as_u64().unwrap();
    assert_eq!(total, 9, "the nine taken above: {listed}");
    assert_eq!(meta["total_pages"].as_u64().unwrap(), total.div_ceil(2));
    let other = Client::new_user(running.addr).await.unwrap();
    let theirs = |path: &str| {
        let request = c.http.get(url(path)).header("X-Auth-Token", &other.token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let theirs_listed = theirs("/submissions").await;
    assert_eq!(
        theirs_listed["meta"]["total_count"], 0,
        "another user sees none of them: {theirs_listed}"
    );
    assert_eq!(get("/submissions?page=0").await.unwrap().status(), 400);

    // Statistics over the caller's own submissions, counted as the listing shows them.
    let raw = get("/statistics").await.unwrap().text().await.unwrap();
    let stats: Value = serde_json::from_str(&raw).unwrap();
    let all: Value = get("/submissions?per_page=100&fields=status,language_id")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown = all["submissions"].as_array().unwrap();
    assert_eq!(stats["submissions"]["total"], 9, "{stats}");
    let days = stats["submissions"]["last_30_days"].as_object().unwrap();
    assert_eq!(days.len(), 30, "{stats}");
    // Newest first, as Judge0 writes them: the days in the order the body has them.
    let mut in_order: Vec<(usize, &String)> = days
        .keys()
        .map(|day| (raw.find(&format!("\"{day}\"")).unwrap(), day))
        .collect();
    in_order.sort();
    let written: Vec<&String> = in_order.into_iter().map(|(_, day)| day).collect();
    let mut newest_first = written.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(written, newest_first, "{raw}");
    let recent: u64 = days.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(
        stats["submissions"]["today"].as_u64().unwrap() + recent,
        9,
        "all nine made just now: {stats}"
    );
    for (key, of) in [("statuses", "status"), ("languages", "language")] {
        let counted = stats[key].as_array().unwrap();
        assert!(!counted.is_empty(), "{stats}");
        for entry in counted {
            let id = &entry[of]["id"];
            let listed = shown
                .iter()
                .filter(|s| match of {
                    "status" => &s["status"]["id"] == id,
                    _ => &s["language_id"] == id,
                })
                .count();
            assert_eq!(entry["count"], listed, "{key} {id}: {stats}");
            assert!(
                entry[of]["name"].as_str().is_some_and(|n| !n.is_empty()),
                "{stats}"
            );
        }
    }
    assert!(
        stats["database"]["size_in_bytes"].as_u64().unwrap() > 0,
        "{stats}"
    );
    let theirs_counted = theirs("/statistics").await;
    assert_eq!(
        theirs_counted["submissions"]["total"], 0,
        "{theirs_counted}"
    );
    assert_eq!(theirs_counted["statuses"], json!([]), "{theirs_counted}");

    // The caller's share of the workers: a sleeping submission is waiting or working.
    let r = post(
        "/submissions",
        json!({"source_code": "import time\ntime.sleep(2)", "language_id": 71}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    // Statistics are kept ten minutes, as Judge0 keeps them, unless asked to count again.
    let again: Value = get("/statistics").await.unwrap().json().await.unwrap();
    assert_eq!(again, stats, "kept");
    let recounted: Value = get("/statistics?invalidate_cache=true")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recounted["submissions"]["total"], 10, "{recounted}");
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = get("/workers").await.unwrap().json().await.unwrap();
        let q = &seen[0];
        if q["size"].as_u64().unwrap() + q["working"].as_u64().unwrap() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let q = &seen[0];
    assert_eq!(q["queue"], "1.13.1", "{seen}");
    assert_eq!(
        q["size"].as_u64().unwrap() + q["working"].as_u64().unwrap(),
        1,
        "{seen}"
    );
    assert_eq!(
        q["available"].as_u64().unwrap(),
        q["idle"].as_u64().unwrap() + q["working"].as_u64().unwrap(),
        "{seen}"
    );
    assert_eq!(q["failed"], 0, "{seen}");
    running.stop().await;
}

/// A program killed by a signal, told both ways (Judge0's own issue #443: a segfault is
/// "Runtime Error (NZEC)" there, `exit_signal` null): by its signal by default, and as
/// Judge0 tells it — bash's exit status 128 + 11 — with `JUDGE0_SIGNALS=nzec`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_told_by_its_name_or_as_judge0_tells_it() {
    use codebox_functions::handlers::judge0::SignalReport;
    use serde_json::json;
    let segfault = json!({"source_code": "import ctypes\nctypes.string_at(0)", "language_id": 71});
    let fields = "?wait=true&fields=status,exit_code,exit_signal,message";
    for (report, status, exit_code, exit_signal, message) in [
        (
            SignalReport::Signal,
            json!({"id": 7, "description": "Runtime Error (SIGSEGV)"}),
            json!(null),
            json!(11),
            "Killed by signal 11 (SIGSEGV)",
        ),
        (
            SignalReport::Nzec,
            json!({"id": 11, "description": "Runtime Error (NZEC)"}),
            json!(139),
            json!(null),
            "Exited with error status 139",
        ),
    ] {
        let running =
            codebox_tests::start_embedded_with(None, |c| c.api.judge0_signals = report).await;
        let c = Client::new_user(running.addr).await.unwrap();
        let (code, answer) = c
            .post(&format!("/judge0/submissions{fields}"), &segfault)
            .await
            .unwrap();
        assert_eq!(code, 201, "{answer}");
        assert_eq!(answer["status"], status, "{report:?}: {answer}");
        assert_eq!(answer["exit_code"], exit_code, "{report:?}: {answer}");
        assert_eq!(answer["exit_signal"], exit_signal, "{report:?}: {answer}");
        assert_eq!(answer["message"], message, "{report:?}: {answer}");
        running.stop().await;
    }
}

//! The Judge0 layer in process: the language list, batches, callbacks and zips refused
//! in Judge0's shapes, and the runs of `number_of_runs` reported as Judge0 reports them.

use super::*;

async fn judge0(app: &Router, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
    let mut r = req(method, uri, None, body);
    r.headers_mut()
        .insert("x-auth-token", token.parse().unwrap());
    send(app, r).await
}

fn hello(language_id: u16) -> Value {
    json!({"source_code": "print(1)", "language_id": language_id})
}

#[tokio::test]
async fn every_language_is_listed_by_its_judge0_id() {
    let app = app();
    let token = login_as(&app, "judith").await;
    let r = judge0(&app, &token, "GET", "/judge0/languages", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert!(ids.len() >= 40, "{} ids: {ids:?}", ids.len());
    // The 18 Debian ships besides Judge0's first ones, and the multi-file program.
    for id in [
        43, 45, 55, 56, 57, 58, 59, 65, 66, 67, 69, 77, 79, 80, 81, 82, 86, 88, 89,
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[tokio::test]
async fn a_batch_is_taken_item_by_item_and_an_empty_one_refused() {
    let app = app();
    let token = login_as(&app, "bart").await;
    let uri = "/judge0/submissions/batch";
    let empty = judge0(&app, &token, "POST", uri, Some(json!({"submissions": []}))).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.json(),
        json!({"error": "there should be at least one submission in a batch"})
    );
    let mixed = json!({"submissions": [hello(71), hello(9999), hello(71)]});
    let r = judge0(&app, &token, "POST", uri, Some(mixed)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let items = r.json();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0]["token"].is_string() && items[2]["token"].is_string());
    assert_eq!(
        items[1],
        json!({"language_id": ["language with id 9999 doesn't exist"]})
    );
}

/// A callback to the deployment's own networks is refused when it is asked for, by address
/// or by a name that resolves there.
#[tokio::test]
async fn callbacks_to_the_deployments_own_networks_are_refused() {
    let app = app();
    let token = login_as(&app, "cal").await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://localhost:9/",
        "http://127.0.0.1:9/",
    ] {
        let mut body = hello(71);
        body["callback_url"] = json!(url);
        let r = judge0(&app, &token, "POST", "/judge0/submissions", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.json()
        );
        let reasons = r.json()["callback_url"].clone();
        assert!(reasons.is_array(), "{url}: {}", r.json());
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> String {
    use std::io::Write;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
}

/// `additional_files` that would escape the sandbox's directory, link out of it, or
/// inflate past the bound: each a 422 naming the field.
#[tokio::test]
async fn zips_that_escape_link_or_explode_are_refused() {
    let app = app();
    let token = login_as(&app, "zed").await;
    let mut link = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    link.add_symlink(
        "link",
        "/etc/passwd",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    let link =
        base64::engine::general_purpose::STANDARD.encode(link.finish().unwrap().into_inner());
    let zeros = vec![0u8; 5 << 20];
    for (what, zip) in [
        ("a parent path", zip_of(&[("../x", b"x")])),
        ("an absolute path", zip_of(&[("/etc/x", b"x")])),
        ("a link", link),
        ("a bomb", zip_of(&[("zeros", &zeros)])),
    ] {
        let mut body = hello(71);
        body["additional_files"] = json!(zip);
        let r = judge0(&app, &token, "POST", "/judge0/submissions", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.json()
        );
        let reasons = r.json()["additional_files"].clone();
        assert!(
            reasons[0].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: {}",
            r.json()
        );
    }
}

/// `number_of_runs` with an expected output: the runs are its tests, and the submission's
/// `time` and `memory` are their means, as Judge0 reports them.
#[tokio::test]
async fn the_runs_time_and_memory_are_their_means() {
    let app = app();
    let token = login_as(&app, "rune").await;
    let mut body = hello(71);
    body["expected_output"] = json!("1\n");
    body["number_of_runs"] = json!(2);
    let r = judge0(&app, &token, "POST", "/judge0/submissions", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let id = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(start(&app, &id).await.status, StatusCode::OK);
    let test = |index: u32, cpu: u64, memory: u64, wall: u64| {
        let mut t = codebox_core::domain::TestResult::skipped(index);
        t.verdict = Verdict::Accepted;
        t.exit_code = Some(0);
        t.stdout = "1\n".into();
        t.cpu_time_ms = Some(cpu);
        t.memory_kb = Some(memory);
        t.time_ms = Some(wall);
        t
    };
    let mut result = codebox_core::domain::CodeResult::empty(Verdict::Accepted);
    result.tests = Some(vec![test(0, 10, 1_000, 50), test(1, 30, 3_000, 70)]);
    let outcome = Commit {
        task_id: id.parse().unwrap(),
        status: TaskStatus::Completed,
        result: TaskResult::Code(result),
        notify: false,
    };
    let r = send(
        &app,
        req(
            "POST",
            "/commit",
            Some(WORKER),
            Some(serde_json::to_value(outcome).unwrap()),
        ),
    )
    .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let uri = format!("/judge0/submissions/{id}?fields=time,memory,wall_time,status_id");
    let shown = judge0(&app, &token, "GET", &uri, None).await.json();
    assert_eq!(
        shown,
        json!({"time": "0.020", "memory": 2000, "wall_time": "0.070", "status_id": 3}),
        "CPU time and memory the means, wall time the last run's"
    );
}

/// The list's `page` and `per_page` read as Rails reads them: blank is the default,
/// leading digits count, and what is no page is Judge0's 400.
#[tokio::test]
async fn pages_are_read_as_rails_reads_them() {
    let app = app();
    let token = login_as(&app, "paige").await;
    for ok in ["page=&per_page=", "page=2abc&per_page=+05", "page=%20%201"] {
        let r = judge0(
            &app,
            &token,
            "GET",
            &format!("/judge0/submissions?{ok}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{ok}: {}", r.json());
    }
    for bad in [
        "page=0",
        "page=abc",
        "per_page=101",
        "page=1000000000",
        "fields=stdout;",
    ] {
        let r = judge0(
            &app,
            &token,
            "GET",
            &format!("/judge0/submissions?{bad}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json());
        assert!(r.json()["error"].is_string(), "{bad}: {}", r.json());
    }
}

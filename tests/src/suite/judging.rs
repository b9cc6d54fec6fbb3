//! Judged tasks: test cases, verdicts, compare modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::client;

/// A C program reading two numbers, printing their sum.
pub(super) const C_SUM: &str = "#include <stdio.h>\nint main(void){long a,b;if(scanf(\"%ld %ld\",&a,&b)!=2)return 3;printf(\"%ld\\n\",a+b);return 0;}\n";

fn verdicts(r: &Value) -> Vec<String> {
    r["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {r}"))
        .iter()
        .map(|t| t["verdict"].as_str().unwrap().to_owned())
        .collect()
}

/// Judging: compiled once, every test in order with its own verdict and output; the task
/// fails on its first failing test. A compile error judges no test.
pub async fn judging_reports_each_test(addr: SocketAddr) {
    let c = client(addr).await;
    let wrong = [3usize, 11, 17];
    let tests: Vec<Value> = (0..20)
        .map(|i| {
            let sum = i * 7 + 5;
            let expected = if wrong.contains(&i) { sum + 1 } else { sum };
            json!({"stdin": format!("{} {}\n", i * 3, i * 4 + 5), "expected_stdout": format!("{expected}\n")})
        })
        .collect();
    let r = c
        .run(json!({"language": "c", "code": C_SUM, "tests": tests}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "wrong_answer", "{r}");
    assert_eq!(
        (r["passed"].as_u64(), r["total"].as_u64()),
        (Some(17), Some(20))
    );
    assert_eq!(r["compile_output"], "");
    let v = verdicts(&r);
    let failing: Vec<usize> = (0..20).filter(|&i| v[i] != "accepted").collect();
    assert_eq!(failing, wrong);
    for (i, t) in r["tests"].as_array().unwrap().iter().enumerate() {
        assert_eq!(t["index"], i);
        assert_eq!(t["stdout"], format!("{}\n", i * 7 + 5), "{t}");
        assert_eq!(t["exit_code"], 0);
        assert!(t["cpu_time_ms"].as_u64().is_some() && t["memory_kb"].as_u64().is_some());
    }
    // A runtime error in one test is that test's verdict, and the task's when it comes
    // first.
    let r = c
        .run(json!({"language": "c", "code": C_SUM, "tests": [
            {"stdin": "1 2", "expected_stdout": "3"},
            {"stdin": "no numbers", "expected_stdout": "0"},
            {"stdin": "2 2", "expected_stdout": "5"}]}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "runtime_error", "{r}");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(verdicts(&r), ["accepted", "runtime_error", "wrong_answer"]);

    let r = c
        .run(
            json!({"language": "c", "code": "int main(void){ return x; }",
            "tests": [{"stdin": "", "expected_stdout": ""}, {"expected_stdout": "1"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r["verdict"], "compile_error", "{r}");
    assert_eq!(
        (r["passed"].as_u64(), r["total"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(r["tests"], json!([]));
    assert!(
        r["compile_output"].as_str().unwrap().contains("error"),
        "{r}"
    );
}

/// `stop_on_failure`: nothing runs after the first failing test.
pub async fn stop_on_failure_skips_the_rest(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c
        .run(
            json!({"language": "python", "code": "print(int(input()) * 2)",
            "stop_on_failure": true, "tests": [
                {"stdin": "1", "expected_stdout": "2"},
                {"stdin": "2", "expected_stdout": "5"},
                {"stdin": "3", "expected_stdout": "6"},
                {"stdin": "x", "expected_stdout": "8"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r["verdict"], "wrong_answer", "{r}");
    assert_eq!(
        verdicts(&r),
        ["accepted", "wrong_answer", "skipped", "skipped"]
    );
    assert_eq!(
        (r["passed"].as_u64(), r["total"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(
        r["tests"][2]["time_ms"],
        Value::Null,
        "a skipped test never ran"
    );
}

/// The comparison modes, on what the program printed.
pub async fn compare_modes_judge_the_output(addr: SocketAddr) {
    let c = client(addr).await;
    let third = "print('0.3333333')";
    let judged = |code: &str, compare: Value, expected: &str| {
        json!({"language": "python", "code": code, "compare": compare,
            "tests": [{"expected_stdout": expected}]})
    };
    for (compare, expected, verdict) in [
        (
            json!({"mode": "tokens", "abs_tol": 1e-6}),
            "0.333333333",
            "accepted",
        ),
        (json!({"mode": "tokens"}), "0.333333333", "wrong_answer"),
        (
            json!({"mode": "tokens", "rel_tol": 1e-9}),
            "0.333333333",
            "wrong_answer",
        ),
        (json!({"mode": "lines"}), "0.3333333  \n\n", "accepted"),
        (json!({"mode": "exact"}), "0.3333333", "wrong_answer"),
        (json!({"mode": "exact"}), "0.3333333\n", "accepted"),
    ] {
        let r = c
            .run(judged(third, compare.clone(), expected))
            .await
            .unwrap();
        assert_eq!(r["verdict"], verdict, "{compare} {expected:?}: {r}");
    }
    // Tolerances belong to tokens; a bad body is refused whole, before anything runs.
    for bad in [
        judged(third, json!({"mode": "lines", "abs_tol": 1}), ""),
        judged(third, json!({"mode": "tokens", "abs_tol": -1}), ""),
        json!({"language": "python", "code": third, "tests": []}),
        json!({"language": "python", "code": third, "stdin": "x", "tests": [{}]}),
        json!({"language": "python", "code": third, "compare": {"mode": "exact"}}),
    ] {
        let r = c
            .http
            .post(c.url("/task"))
            .bearer_auth(&c.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

/// A test that runs past the time limit is `time_limit`; the others pass.
pub async fn a_slow_test_hits_the_time_limit_alone(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c
        .run(json!({"language": "python", "limits": {"time_ms": 1000},
            "code": "import time\ns = input()\nif s == 'slow':\n    time.sleep(30)\nprint(s)",
            "tests": [{"stdin": "a", "expected_stdout": "a"},
                      {"stdin": "slow", "expected_stdout": "slow"},
                      {"stdin": "b", "expected_stdout": "b"}]}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "time_limit", "{r}");
    assert_eq!(verdicts(&r), ["accepted", "time_limit", "accepted"]);
    assert_eq!(r["passed"], 2);
    let slow = r["tests"][1]["time_ms"].as_u64().unwrap();
    assert!((1000..5000).contains(&slow), "{slow}");
}

/// A judged result at the contract's bounds — 64 tests of 1 MiB of output each — is
/// stored and committed whole, on every profile.
pub async fn sixty_four_tests_of_a_mebibyte_each_commit(addr: SocketAddr) {
    let c = client(addr).await;
    let tests: Vec<Value> = (0..64)
        .map(|i| json!({"stdin": i.to_string(), "expected_stdout": "short"}))
        .collect();
    let id = c
        .submit(&json!({"language": "python", "limits": {"output_kb": 1024},
            "code": "import sys\nn = int(input())\nsys.stdout.write(chr(97 + n % 26) * 1048576)",
            "tests": tests}))
        .await
        .unwrap();
    let r = c.wait(&id, Duration::from_secs(300)).await.unwrap();
    assert_eq!(
        r["status"], "completed",
        "{} {}: {}",
        r["status"], r["verdict"], r["stderr"]
    );
    assert_eq!(r["verdict"], "wrong_answer");
    assert_eq!(
        (r["passed"].as_u64(), r["total"].as_u64()),
        (Some(0), Some(64))
    );
    assert_eq!(r["truncated"], false);
    for (i, t) in r["tests"].as_array().unwrap().iter().enumerate() {
        let out = t["stdout"].as_str().unwrap();
        let letter = char::from(b'a' + (i % 26) as u8);
        assert!(
            out.len() == 1024 * 1024 && out.chars().all(|ch| ch == letter),
            "test {i}: {} bytes",
            out.len()
        );
    }
}

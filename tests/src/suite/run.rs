//! A program's run: its output, input, exit and compile, in every language the suite names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::{client, code};
use crate::Client;

const C_HELLO: &str = "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n";

const CPP_HELLO: &str = "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}\n";

pub async fn python_hello(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("python", "print('hello')"))
        .await
        .unwrap();
    assert_eq!(r["status"], "completed");
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "hello\n");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["truncated"], false);
    assert!(r["time_ms"].as_u64().is_some());
}

pub async fn c_and_cpp_hello_with_gcc_and_clang(addr: SocketAddr) {
    let c = client(addr).await;
    for (lang, src, compiler) in [
        ("c", C_HELLO, "gcc"),
        ("c", C_HELLO, "clang"),
        ("cpp", CPP_HELLO, "gcc"),
        ("cpp", CPP_HELLO, "clang"),
    ] {
        let r = c
            .run(json!({"language": lang, "code": src, "compiler": compiler}))
            .await
            .unwrap();
        assert_eq!(r["verdict"], "ok", "{lang}/{compiler}: {r}");
        assert_eq!(r["stdout"], "hello\n", "{lang}/{compiler}");
    }
}

pub async fn stdin_and_args(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c
        .run(
            json!({"language": "python", "code": "import sys\nprint(input()[::-1], sys.argv[1:])",
            "stdin": "olleh\n", "args": ["a b", "--x"]}),
        )
        .await
        .unwrap();
    assert_eq!(r["stdout"], "hello ['a b', '--x']\n", "{r}");
    let src = "#include <stdio.h>\nint main(int c,char**v){char b[64];if(!fgets(b,64,stdin))return 9;printf(\"%s|%s|%d\\n\",v[1],b,c);}";
    let r = c
        .run(json!({"language": "c", "code": src, "stdin": "in", "args": ["arg1"]}))
        .await
        .unwrap();
    assert_eq!(r["stdout"], "arg1|in|2\n", "{r}");
}

/// `GET /result/{id}?encoding=base64`, decoded: the exact bytes of each stream.
async fn exact_output(c: &Client, id: &str) -> (Value, Vec<u8>, Vec<u8>) {
    c.wait(id, Duration::from_secs(90)).await.unwrap();
    let r = c
        .get_json(&format!("/result/{id}?encoding=base64"))
        .await
        .unwrap();
    assert_eq!(r["encoding"], "base64", "{r}");
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let (out, err) = (decode(&r["stdout"]), decode(&r["stderr"]));
    (r, out, err)
}

/// Whatever a program writes is its result, byte for byte, on every profile: NUL, every
/// byte 0–255, and 1 MiB of control bytes per stream (six characters each as JSON
/// escapes). Stdin with a NUL reaches the program whole.
pub async fn any_bytes_a_program_writes_are_its_result(addr: SocketAddr) {
    let c = client(addr).await;
    let id = c
        .submit(&json!({"language": "python", "code":
            "import sys\nsys.stdout.buffer.write(b'a\\x00b')\nsys.stderr.buffer.write(bytes(range(256)))"}))
        .await
        .unwrap();
    let (r, out, err) = exact_output(&c, &id).await;
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(out, b"a\x00b");
    assert_eq!(err, (0..=255u8).collect::<Vec<_>>());
    // As text by default: NUL is a JSON escape, bytes that are not UTF-8 become U+FFFD.
    let text = c.get_json(&format!("/result/{id}")).await.unwrap();
    assert_eq!(text["encoding"], "utf-8");
    assert_eq!(text["stdout"], "a\u{0}b");
    assert!(text["stderr"].as_str().unwrap().contains('\u{fffd}'));

    let id = c
        .submit(&json!({"language": "python", "limits": {"output_kb": 1024}, "code":
            "import sys\nsys.stdout.buffer.write(b'\\x01' * 1048576)\nsys.stderr.buffer.write(b'\\x01' * 1048576)"}))
        .await
        .unwrap();
    let (r, out, err) = exact_output(&c, &id).await;
    assert_eq!(
        (r["verdict"].as_str(), r["truncated"].as_bool()),
        (Some("ok"), Some(false)),
        "{}",
        r["verdict"]
    );
    let ones = |b: &[u8]| (b.len(), b.iter().filter(|&&x| x == 1).count());
    assert_eq!(
        (ones(&out), ones(&err)),
        ((1 << 20, 1 << 20), (1 << 20, 1 << 20)),
        "{}",
        r["verdict"]
    );

    let id = c
        .submit(&json!({"language": "python", "stdin": "x\u{0}y\u{1}",
            "code": "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"}))
        .await
        .unwrap();
    let (_, out, _) = exact_output(&c, &id).await;
    assert_eq!(out, b"\x01y\x00x");
}

pub async fn non_zero_exit_is_a_runtime_error(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code(
            "python",
            "import sys\nprint('bye', file=sys.stderr)\nsys.exit(3)",
        ))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "runtime_error");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["signal"], Value::Null);
    assert_eq!(r["stderr"], "bye\n");
}

pub async fn compile_error_shows_the_compiler_output(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("c", "int main(void){ return undefined_name; }"))
        .await
        .unwrap();
    assert_eq!(r["status"], "completed");
    assert_eq!(r["verdict"], "compile_error");
    assert!(
        r["compile_output"]
            .as_str()
            .unwrap()
            .contains("undefined_name"),
        "{r}"
    );
    assert_eq!(r["stdout"], "");
}

pub async fn segfault_reports_the_signal(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code(
            "c",
            "int main(void){ volatile int *p = 0; *p = 1; return 0; }",
        ))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "runtime_error", "{r}");
    assert_eq!(r["signal"], "SIGSEGV");
}

/// `merge_stderr`: one stream, in the order the program wrote.
pub async fn merged_stderr_keeps_the_order(addr: SocketAddr) {
    let src = "import sys\nfor i in range(3):\n    print('out', i, flush=True)\n    print('err', i, file=sys.stderr, flush=True)";
    let r = client(addr)
        .await
        .run(json!({"language": "python", "code": src, "merge_stderr": true}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(
        r["stdout"], "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n",
        "{r}"
    );
    assert_eq!(r["stderr"], "", "{r}");
}

/// `compiler_options` reach the compiler as words (quoted ones kept whole, no shell), and
/// belong to compiled languages.
pub async fn compiler_options_reach_the_compiler(addr: SocketAddr) {
    let src = "#include <stdio.h>\nint main(void){printf(\"%d %s\\n\", VALUE, NAME);return 0;}\n";
    let c = client(addr).await;
    let r = c
        .run(json!({"language": "c", "code": src,
            "compiler_options": "-DVALUE=42 '-DNAME=\"a b; echo x\"'"}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "42 a b; echo x\n", "{r}");
    let refused = c
        .http
        .post(c.url("/task"))
        .bearer_auth(&c.token)
        .json(&json!({"language": "python", "code": "print(1)", "compiler_options": "-O2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

pub async fn languages_report_real_versions(addr: SocketAddr) {
    let c = client(addr).await;
    // A worker reports its image's versions once it is up: wait for them, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let langs: Value = loop {
        let langs: Value = c
            .http
            .get(c.url("/languages"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if langs[0]["version"].is_string() || Instant::now() > deadline {
            break langs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let langs = langs.as_array().unwrap();
    let python = langs.iter().find(|l| l["id"] == "python").unwrap();
    assert!(
        python["version"].as_str().unwrap().starts_with('3'),
        "{python}"
    );
    let c_lang = langs.iter().find(|l| l["id"] == "c").unwrap();
    assert_eq!(c_lang["compiled"], true);
    for comp in c_lang["compilers"].as_array().unwrap() {
        assert!(
            comp["version"]
                .as_str()
                .is_some_and(|v| v.chars().next().unwrap().is_ascii_digit()),
            "{comp}"
        );
    }
}

/// Files beside the program: a package in a directory of its own imported by python and
/// a data file it reads; a header C includes at its compile and bytes it reads at its run;
/// Judge0's `additional_files` zip the same way, the submission's own file winning over
/// the zip's of its name.
pub async fn files_sit_beside_the_program(addr: SocketAddr) {
    let c = client(addr).await;
    let py = c
        .run(json!({
            "language": "python",
            "code": "from lib.helper import greet\nprint(greet(open('data/name.txt').read().strip()))",
            "files": [
                {"path": "lib/__init__.py", "content": ""},
                {"path": "lib/helper.py", "content": "def greet(n):\n    return 'hi ' + n\n"},
                {"path": "data/name.txt", "content": "Ada\n"},
            ],
        }))
        .await
        .unwrap();
    assert_eq!(py["verdict"], "ok", "{py}");
    assert_eq!(py["stdout"], "hi Ada\n", "{py}");
    let cc = c
        .run(json!({
            "language": "c",
            "code": "#include <stdio.h>\n#include \"inc/answer.h\"\nint main(void){FILE *f = fopen(\"n.bin\", \"rb\"); printf(\"%d %d\\n\", ANSWER, f ? fgetc(f) : -1); return 0;}\n",
            "files": [
                {"path": "inc/answer.h", "content": "#define ANSWER 42\n"},
                {"path": "n.bin", "content": "/w==", "encoding": "base64"},
            ],
        }))
        .await
        .unwrap();
    assert_eq!(cc["verdict"], "ok", "{cc}");
    assert_eq!(cc["stdout"], "42 255\n", "{cc}");
    let (status, problem) = c
        .post(
            "/task",
            &json!({"language": "python", "code": "1", "files": [{"path": "../x", "content": ""}]}),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{problem}");
    // Judge0: a zip with a data file and a main.py of its own, which loses.
    let zip = crate::zip_base64(&[
        ("in.txt", "from the zip\n"),
        ("main.py", "print('the zip wins')"),
    ]);
    let (status, j) = c
        .post(
            "/judge0/submissions?wait=true",
            &json!({
                "source_code": "print(open('in.txt').read(), end='')",
                "language_id": 71,
                "additional_files": zip,
            }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{j}");
    assert_eq!(j["status"]["id"], 3, "{j}");
    assert_eq!(j["stdout"], "from the zip\n", "{j}");
}

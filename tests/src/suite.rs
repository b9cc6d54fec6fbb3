//! The end-to-end suite: each function takes the address of a running stack, so the
//! same tests run against every profile (see `suite!`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use crate::{Client, containers_of};
use base64::Engine;
use serde_json::{Value, json};

async fn client(addr: SocketAddr) -> Client {
    Client::new_user(addr).await.unwrap()
}

fn code(language: &str, code: &str) -> Value {
    json!({"language": language, "code": code})
}

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

pub async fn infinite_loop_hits_the_time_limit(addr: SocketAddr) {
    let started = Instant::now();
    let r = client(addr)
        .await
        .run(json!({"language": "python", "code": "while True: pass", "limits": {"time_ms": 1000}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "time_limit", "{r}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // A sleeping program is stopped too: the limit is wall-clock.
    let r = client(addr)
        .await
        .run(json!({"language": "python", "code": "import time\ntime.sleep(30)", "limits": {"time_ms": 500}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "time_limit", "{r}");
}

pub async fn big_allocation_hits_the_memory_limit(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(
            json!({"language": "python", "code": "x = bytearray(600 * 1024 * 1024)\nprint(len(x))",
            "limits": {"memory_mb": 128}}),
        )
        .await
        .unwrap();
    assert_eq!(r["verdict"], "memory_limit", "{r}");
    assert_eq!(r["stdout"], "");
}

pub async fn output_flood_is_capped(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(
            json!({"language": "python", "code": "print('start')\nwhile True: print('x' * 1000)",
            "limits": {"output_kb": 16}}),
        )
        .await
        .unwrap();
    assert_eq!(r["verdict"], "output_limit", "{r}");
    assert_eq!(r["truncated"], true);
    let out = r["stdout"].as_str().unwrap();
    assert_eq!(out.len(), 16 * 1024);
    assert!(
        out.starts_with("start\nxxx"),
        "output before the cap is kept"
    );
}

/// The sandbox agent's facts: an exit code is never taken for a signal, a signal never for
/// an exit code, CPU time counts work and not waiting, peak memory is measured, and the
/// wall time starts at the program (not at the container, not at the compiler).
pub async fn a_run_reports_exact_facts(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c
        .run(code("python", "import sys\nsys.exit(137)"))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "runtime_error", "{r}");
    assert_eq!(
        (&r["exit_code"], &r["signal"]),
        (&json!(137), &Value::Null),
        "{r}"
    );
    let r = c
        .run(code("python", "import os\nos.kill(os.getpid(), 9)"))
        .await
        .unwrap();
    assert_eq!(
        r["verdict"], "runtime_error",
        "a SIGKILL of its own is no memory limit: {r}"
    );
    assert_eq!(
        (&r["exit_code"], &r["signal"]),
        (&Value::Null, &json!("SIGKILL")),
        "{r}"
    );
    let r = c
        .run(code(
            "python",
            "b = b'x' * (100 * 1024 * 1024)\nprint(len(b))",
        ))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert!(r["memory_kb"].as_u64().unwrap() >= 100_000, "{r}");
    // The busy loop needs a second of CPU, which a machine busy with the rest of the
    // suite may give it slowly: its wall-clock limit is the highest there is.
    let busy = c
        .run(json!({"language": "python", "limits": {"time_ms": 20_000},
            "code": "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"}))
        .await
        .unwrap();
    assert_eq!(busy["verdict"], "ok", "{busy}");
    assert!(busy["cpu_time_ms"].as_u64().unwrap() >= 800, "{busy}");
    let idle = c
        .run(code("python", "import time\ntime.sleep(1)"))
        .await
        .unwrap();
    assert!(idle["cpu_time_ms"].as_u64().unwrap() < 200, "{idle}");
    let wall = idle["time_ms"].as_u64().unwrap();
    assert!((1000..3000).contains(&wall), "{idle}");
    // A compiled program's time is its run alone, without the compile before it.
    let r = c.run(code("c", "int main(void){return 0;}")).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert!(r["time_ms"].as_u64().unwrap() < 250, "{r}");
}

/// The facts count every process of the run, even those the program hides: two children
/// with `SIGCHLD` ignored (the kernel reaps them, so they never reach a parent's rusage)
/// each burn a second of CPU and touch 150 MB. The cgroup saw all of it. (On the host's
/// kernel: gVisor shows the sandbox no cgroup, and its facts are still the Sentry's rusage.)
pub async fn hidden_children_count_in_the_facts(addr: SocketAddr) {
    let src = "import os, signal, time\n\
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
        for _ in range(2):\n\
        \x20   if os.fork() == 0:\n\
        \x20       b = bytearray(150 * 1024 * 1024)\n\
        \x20       for i in range(0, len(b), 4096):\n\
        \x20           b[i] = 1\n\
        \x20       t = time.process_time()\n\
        \x20       while time.process_time() - t < 1.0:\n\
        \x20           pass\n\
        \x20       os._exit(0)\n\
        # SIGCHLD ignored: wait blocks until every child is gone, then has no status.\n\
        try:\n\
        \x20   os.waitpid(-1, 0)\n\
        except ChildProcessError:\n\
        \x20   pass\n\
        print('done')";
    let r = client(addr)
        .await
        .run(json!({"language": "python", "code": src,
            "limits": {"time_ms": 20_000, "memory_mb": 512}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "done\n", "{r}");
    assert!(r["cpu_time_ms"].as_u64().unwrap() >= 1_500, "{r}");
    assert!(r["memory_kb"].as_u64().unwrap() >= 140_000, "{r}");
}

/// Recursion 400 000 deep (about 40 MB of stack) fits the default stack of 64 MiB, as on
/// Judge0; `limits.stack_mb` sets it, and a program over it dies of SIGSEGV.
pub async fn deep_recursion_fits_the_default_stack(addr: SocketAddr) {
    let src = "#include <cstdio>\n\
        int depth(int n) { volatile char pad[64]; pad[0] = n & 1; if (n == 0) return 0; return depth(n - 1) + pad[0]; }\n\
        int main() { std::printf(\"%d\\n\", depth(400000)); }\n";
    let c = client(addr).await;
    let r = c.run(code("cpp", src)).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "200000\n", "{r}");
    let r = c
        .run(json!({"language": "cpp", "code": src, "limits": {"stack_mb": 8}}))
        .await
        .unwrap();
    assert_eq!(r["signal"], "SIGSEGV", "{r}");
}

/// A compiled program must fit its run: it is written to the run's `/tmp`, whose pages
/// count against the run's memory. A 15.5 MiB program (a big initialised array) runs under
/// 256 MiB; under 16 MiB it is the task's compile error saying why, not a run whose
/// sandbox is killed while taking it (without the bound: `memory_limit` at 0 ms on runc).
pub async fn a_compiled_program_must_fit_its_run(addr: SocketAddr) {
    // Indexed by argc, so the compiler keeps the whole array in the binary.
    let src = "#include <stdio.h>\nstatic char big[31 << 19] = {7, 5};\n\
        int main(int argc, char **argv) { (void)argv; printf(\"%d\\n\", big[argc] + big[(31 << 19) - argc]); return 0; }\n";
    let c = client(addr).await;
    let r = c
        .run(json!({"language": "c", "code": src, "limits": {"memory_mb": 256}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "5\n", "{r}");
    let r = c
        .run(json!({"language": "c", "code": src, "limits": {"memory_mb": 16}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "compile_error", "{r}");
    let said = r["compile_output"].as_str().unwrap();
    assert!(
        said.contains("larger than 12288 KiB") && said.contains("16 MiB"),
        "{said}"
    );
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

/// `limits.cpu_ms` counts CPU time, not waiting: a program that sleeps past it is fine,
/// one that computes past it ends with `time_limit` long before its wall limit.
pub async fn a_cpu_limit_counts_work_not_waiting(addr: SocketAddr) {
    let c = client(addr).await;
    let sleeper = c
        .run(
            json!({"language": "python", "code": "import time\ntime.sleep(1.5)\nprint('rested')",
            "limits": {"cpu_ms": 500, "time_ms": 5000}}),
        )
        .await
        .unwrap();
    assert_eq!(sleeper["verdict"], "ok", "{sleeper}");
    assert_eq!(sleeper["stdout"], "rested\n", "{sleeper}");
    let busy = c
        .run(
            json!({"language": "python", "code": "while True:\n    pass",
            "limits": {"cpu_ms": 500, "time_ms": 10000}}),
        )
        .await
        .unwrap();
    // What ended it is the CPU limit: its CPU time is just past 500 ms (the agent looks
    // every 10 ms), and its wall time is short of the wall limit. How short depends on
    // the share of a CPU the machine gave it (under a busy suite, a third: 1.8 s).
    assert_eq!(busy["verdict"], "time_limit", "{busy}");
    ended_by_the_cpu_limit(&busy, 500, 10_000);
    // Busy and writing a byte every millisecond: the agent's channel never falls quiet.
    let chatty = c
        .run(json!({"language": "python", "code": "import sys, time\nt = time.time()\nwhile True:\n    if time.time() - t > 0.001:\n        sys.stdout.write('.'); sys.stdout.flush(); t = time.time()",
            "limits": {"cpu_ms": 500, "time_ms": 10000}}))
        .await
        .unwrap();
    assert_eq!(chatty["verdict"], "time_limit", "{chatty}");
    ended_by_the_cpu_limit(&chatty, 500, 10_000);
}

/// A run ended by its CPU limit: at least `cpu_ms` of CPU, less than twice that (the
/// agent stopped it promptly, counted in CPU rather than in a machine's wall time), and
/// less wall time than its wall limit.
fn ended_by_the_cpu_limit(r: &Value, cpu_ms: u64, time_ms: u64) {
    let cpu = r["cpu_time_ms"].as_u64().unwrap();
    assert!((cpu_ms..2 * cpu_ms).contains(&cpu), "{r}");
    assert!(r["time_ms"].as_u64().unwrap() < time_ms, "{r}");
}

/// Every byte the program writes travels inside a frame of the agent's: bytes that look
/// like the agent's own report come back as plain output, and the real verdict stands. A
/// program that reaches the agent's own stdout (`/proc/1/fd/1`: refused on runc, where
/// the agent is non-dumpable; gVisor lets it open) cannot forge a report either: the
/// report is authenticated, and the run is void.
pub async fn a_program_cannot_forge_the_agents_report(addr: SocketAddr) {
    let report = br#"{"stop":"exited","exit_code":0,"signal":null,"wall_us":1,"cpu_us":1,"memory_kb":1,"truncated":false,"stdout_bytes":0,"stderr_bytes":0,"oom_killed":false}"#;
    let mut frame = vec![b'X'];
    frame.extend_from_slice(&(report.len() as u32 + 32).to_le_bytes());
    frame.extend_from_slice(report);
    frame.extend_from_slice(&[0u8; 32]);
    let fake = base64::engine::general_purpose::STANDARD.encode(&frame);
    let c = client(addr).await;
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let result = |id: String| {
        let c = c.clone();
        async move {
            c.wait(&id, Duration::from_secs(60)).await.unwrap();
            c.get_json(&format!("/result/{id}?encoding=base64"))
                .await
                .unwrap()
        }
    };
    // On its own streams.
    let src = format!(
        "import base64, os, sys\nf = base64.b64decode('{fake}')\nsys.stdout.buffer.write(f)\nsys.stdout.flush()\nsys.stderr.buffer.write(f)\nsys.stderr.flush()\n\
        for fd in range(3, 20):\n    try: os.write(fd, f)\n    except OSError: pass\nsys.exit(5)"
    );
    let r = result(c.submit(&code("python", &src)).await.unwrap()).await;
    assert_eq!(r["verdict"], "runtime_error", "{r}");
    assert_eq!(r["exit_code"], 5, "{r}");
    assert_eq!(
        decode(&r["stdout"]),
        frame,
        "the fake frame is output, verbatim"
    );
    assert_eq!(decode(&r["stderr"]), frame);
    // On the agent's own stdout, where the runtime lets it.
    let src = format!(
        "import base64, sys\nf = base64.b64decode('{fake}')\ntry:\n    w = open('/proc/1/fd/1', 'wb', buffering=0)\nexcept OSError:\n    print('refused')\n    sys.exit(6)\nw.write(b'O' + (5).to_bytes(4, 'little') + b'fake\\n')\nw.write(f)\nsys.exit(7)"
    );
    let r = result(c.submit(&code("python", &src)).await.unwrap()).await;
    assert_eq!(r["verdict"], "runtime_error", "never ok: {r}");
    match r["exit_code"].as_i64() {
        Some(6) => assert_eq!(decode(&r["stdout"]), b"refused\n", "{r}"),
        _ => {
            assert!(
                String::from_utf8_lossy(&decode(&r["stderr"])).contains("its run is void"),
                "{r}"
            );
            assert_eq!(r["exit_code"], Value::Null, "{r}");
        }
    }
}

/// No two tasks share a network namespace: a program listening on loopback and on an
/// abstract Unix socket is reachable by no other task, neither while it runs nor after it
/// ended (what any reuse of namespaces between sandboxes would have to keep).
pub async fn tasks_never_share_a_network_namespace(addr: SocketAddr) {
    let listener = "import os, socket, time\n\
        u = socket.socket(socket.AF_UNIX)\nu.bind('\\0codebox-probe')\nu.listen()\n\
        t = socket.socket()\nt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\nt.bind(('127.0.0.1', 40404))\nt.listen()\n\
        print('listening', os.readlink('/proc/self/ns/net'), flush=True)\ntime.sleep(3)";
    let prober = "import os, socket\n\
        def probe(family, address):\n    s = socket.socket(family)\n    s.settimeout(1)\n    try:\n        s.connect(address)\n        return 'reached'\n    except OSError:\n        return 'refused'\n\
        print(probe(socket.AF_UNIX, '\\0codebox-probe'), probe(socket.AF_INET, ('127.0.0.1', 40404)))";
    let c = client(addr).await;
    let id = c
        .submit(&json!({"language": "python", "code": listener, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.status(&id).await.unwrap()["status"] != "running" {
        assert!(Instant::now() < deadline, "the listener never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it runs: tasks at the same time.
    let during: Vec<String> = futures::future::join_all(
        (0..4).map(|_| async { c.submit(&code("python", prober)).await.unwrap() }),
    )
    .await;
    let listened = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert!(
        listened["stdout"]
            .as_str()
            .unwrap()
            .starts_with("listening"),
        "{listened}"
    );
    // After it: one task after another, in whatever namespace comes next.
    let mut after = Vec::new();
    for _ in 0..6 {
        after.push(c.run(code("python", prober)).await.unwrap());
    }
    for id in during {
        after.push(c.wait(&id, Duration::from_secs(60)).await.unwrap());
    }
    for r in after {
        assert_eq!(r["stdout"], "refused refused\n", "{r}");
    }
}

/// What a program leaves running is killed when it ends: the result does not wait for a
/// daemon (nor for the time limit), and the daemon's CPU time is the program's.
pub async fn a_programs_daemons_die_with_it(addr: SocketAddr) {
    let src = "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True: pass\n    os._exit(0)\nprint('parent done')";
    let c = client(addr).await;
    let started = Instant::now();
    let r = c
        .run(json!({"language": "python", "code": src, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "parent done\n");
    assert!(r["time_ms"].as_u64().unwrap() < 2000, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the result waited for the daemon"
    );
}

/// The Docker bridge's gateway address on this machine (the first address of its
/// subnet): what a container on the default network would reach the host through.
fn bridge_gateway() -> String {
    let out = std::process::Command::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
        ])
        .output()
        .unwrap();
    let subnet = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let net: std::net::Ipv4Addr = subnet
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bridge subnet: {subnet:?}"));
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

/// No interface but `lo`, no route, and the host's bridge address is unreachable: the
/// connect fails at once as unreachable — ENETUNREACH from Linux, EHOSTUNREACH from
/// gVisor (on a bridge network it would be refused or accepted by the host instead).
pub async fn network_is_unreachable(addr: SocketAddr) {
    let src = format!(
        "import errno, os, socket\n\
         print(sorted(os.listdir('/sys/class/net')))\n\
         print(len(open('/proc/net/route').read().splitlines()[1:]))\n\
         s = socket.socket()\ns.settimeout(3)\n\
         try:\n    s.connect(('{}', 9))\n    print('connected')\n\
         except OSError as e:\n    print('unreachable' if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else errno.errorcode.get(e.errno, e.errno))",
        bridge_gateway()
    );
    let r = client(addr).await.run(code("python", &src)).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "['lo']\n0\nunreachable\n", "{r}");
}

/// What the container configuration promises, seen from inside: no capabilities, no
/// new privileges, nothing writable but /tmp, a pids limit that bites, and nothing left
/// by one task for the next.
pub async fn the_sandbox_is_locked_down(addr: SocketAddr) {
    let c = client(addr).await;
    // NoNewPrivs through prctl(PR_GET_NO_NEW_PRIVS): gVisor's /proc does not show it.
    let src = "import ctypes, os, resource\n\
        print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_FSIZE))\n\
        st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n\
        print(st['CapEff'].strip(), ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))\n\
        for d in ['/', '/usr', '/var/tmp', '/etc', '/tmp']:\n\
        \x20   try:\n\
        \x20       open(os.path.join(d, '.probe'), 'w').close()\n\
        \x20       print(d, 'writable')\n\
        \x20   except OSError:\n\
        \x20       print(d, 'read-only')\n\
        open('/tmp/left-behind', 'w').write('x')";
    let r = c.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"],
        "(256, 256) (16777216, 16777216)\n0000000000000000 1\n/ read-only\n/usr read-only\n/var/tmp read-only\n/etc read-only\n/tmp writable\n",
        "{r}"
    );
    let next = c
        .run(code(
            "python",
            "import os\nprint(os.path.exists('/tmp/left-behind'), os.listdir('/tmp'))",
        ))
        .await
        .unwrap();
    assert_eq!(
        next["stdout"], "False ['box']\n",
        "a fresh /tmp for every task: {next}"
    );
    // The pids limit (64) stops a program long before it could hurt the host.
    let forks = "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(2)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)";
    let r = c
        .run(json!({"language": "python", "code": forks, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    let n: u32 = r["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(n < 64, "{n} processes were forked: {r}");
}

/// What a program without capabilities must not reach even where the kernel would let an
/// unprivileged process (this kernel lets it make user namespaces): a new namespace,
/// through `unshare` or through `clone` with namespace flags (a user namespace first: the
/// way into most of the kernel's attack surface), and the kernel's keyrings. Docker's
/// default seccomp profile refuses them, and so does the runc engine's policy
/// (`oci::seccomp`); the filter is on (`Seccomp: 2`).
pub async fn namespaces_and_keyrings_are_refused(addr: SocketAddr) {
    let src = "import ctypes, errno, os, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        def res(r):\n    return 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')\n\
        keyctl, clone = {'x86_64': (250, 56), 'aarch64': (219, 220)}[platform.machine()]\n\
        print('unshare', res(libc.unshare(0x10000000)))\n\
        print('keyctl', res(libc.syscall(keyctl, 0, 0, 0)))\n\
        pid = libc.syscall(clone, 0x10000000 | 17, 0, 0, 0, 0)\n\
        if pid == 0:\n    os._exit(0)\n\
        if pid > 0:\n    os.waitpid(pid, 0)\n\
        print('clone', 'ok' if pid > 0 else 'refused')\n\
        print([l for l in open('/proc/self/status') if l.startswith('Seccomp:')][0].split()[1])";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"], "unshare EPERM\nkeyctl EPERM\nclone refused\n2\n",
        "{r}"
    );
}

/// A C program that opens a socket of each family (and `socketpair`), `AF_VSOCK` also
/// with high bits set (the kernel reads an `int`: a filter comparing fewer bits than it
/// sees would let it by), and on x86-64 tries `socketcall(SYS_SOCKET, AF_VSOCK)` through
/// the 32-bit entry (`int $0x80`) in a child, which may be killed for it (what comes back
/// counts only if it is a socket).
const SOCKET_PROBE: &str = r#"#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void try(const char *name, long family) {
    long fd = syscall(SYS_socket, family, SOCK_STREAM, 0);
    if (fd < 0) fd = syscall(SYS_socket, family, SOCK_DGRAM, 0);
    if (fd < 0) fd = syscall(SYS_socket, family, SOCK_RAW, 0);
    printf("%s %s\n", name, fd >= 0 ? "open" : "refused");
}
int main(void) {
    try("vsock", 40); try("alg", 38); try("packet", 17); try("key", 15);
    try("netlink", 16); try("vsock+high", (1L << 32) | 40);
    try("unix", 1); try("inet", 2); try("inet6", 10);
    int sv[2];
    printf("pair %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? "open" : "refused");
    printf("vsock pair %s\n", socketpair(40, SOCK_STREAM, 0, sv) == 0 ? "open" : "refused");
#if defined(__x86_64__)
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (args == MAP_FAILED) _exit(2);
        args[0] = 40; args[1] = SOCK_STREAM; args[2] = 0;
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(102), "b"(1), "c"(args) : "memory");
        struct stat st;
        _exit(ret >= 0 && fstat((int)ret, &st) == 0 && S_ISSOCK(st.st_mode) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("int80 %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "open" : "refused");
#else
    printf("int80 refused\n");
#endif
    return 0;
}
"#;

/// What [`SOCKET_PROBE`] prints where only local and IP sockets open; `netlink` is what
/// it says of netlink.
fn socket_probe_output(netlink: &str) -> String {
    format!(
        "vsock refused\nalg refused\npacket refused\nkey refused\nnetlink {netlink}\n\
         vsock+high refused\nunix open\ninet open\ninet6 open\npair open\nvsock pair refused\n\
         int80 refused\n"
    )
}

/// "No network" means no way out of the sandbox at all: on a virtual machine `AF_VSOCK`
/// reaches the hypervisor's host, and `AF_ALG`, `AF_PACKET`, `AF_KEY` and netlink are kernel
/// surface no program needs. On the host's kernel (runc, Docker) the seccomp policy lets
/// only local and IP sockets open (IP inside a namespace with loopback alone), and no
/// 32-bit entry gets around it.
pub async fn only_local_and_ip_sockets_open(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("c", SOCKET_PROBE))
        .await
        .unwrap();
    assert_eq!(r["stdout"], socket_probe_output("refused"), "{r}");
}

/// On gVisor the program's kernel is the Sentry: it implements none of those families and
/// no 32-bit entry; its netlink (routes of the sandbox's own loopback) is its own, never
/// the host's.
pub async fn gvisor_opens_no_socket_to_the_host(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("c", SOCKET_PROBE))
        .await
        .unwrap();
    assert_eq!(r["stdout"], socket_probe_output("open"), "{r}");
}

/// Under host memory pressure the kernel's first victim is a program, never the worker or
/// the database beside it.
pub async fn the_program_is_the_first_the_kernel_kills(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code(
            "python",
            "print(open('/proc/self/oom_score_adj').read().strip())",
        ))
        .await
        .unwrap();
    assert_eq!(r["stdout"], "1000\n", "{r}");
}

/// What the host's kernel says of its devices, interrupts and power is not the
/// program's to read: moby's current masked paths on every engine (Debian 12's Docker 20.10
/// shows `/proc/interrupts`).
pub async fn host_interrupts_and_power_are_masked(addr: SocketAddr) {
    let src = "import os\n\
        for p in ['/proc/interrupts', '/proc/kcore', '/proc/keys', '/sys/firmware', '/sys/devices/virtual/powercap']:\n\
        \x20   if os.path.isdir(p):\n\
        \x20       print(p, len(os.listdir(p)))\n\
        \x20   elif os.path.exists(p):\n\
        \x20       print(p, len(open(p, 'rb').read()))\n\
        \x20   else:\n\
        \x20       print(p, 0)";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"],
        "/proc/interrupts 0\n/proc/kcore 0\n/proc/keys 0\n/sys/firmware 0\n/sys/devices/virtual/powercap 0\n",
        "{r}"
    );
}

/// The runc engine's own denial beyond Docker 20.10's default profile: io_uring (a kernel
/// interface with a long record of exploits); and userfaultfd (a common exploit aid,
/// which Docker's profile denies too).
pub async fn io_uring_and_userfaultfd_are_refused(addr: SocketAddr) {
    let src = "import ctypes, errno, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        def res(r):\n    return 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')\n\
        nr = {'x86_64': (425, 323), 'aarch64': (425, 282)}[platform.machine()]\n\
        print('io_uring_setup', res(libc.syscall(nr[0], 1, 0)))\n\
        print('userfaultfd', res(libc.syscall(nr[1], 0)))";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"], "io_uring_setup EPERM\nuserfaultfd EPERM\n",
        "{r}"
    );
}

/// The kernel keeps some quotas per user (inotify instances: 128 here), and every
/// sandbox has a uid of its own: a task holding every inotify instance it can get leaves
/// a concurrent task of another user the five it asks for. (With one uid for all
/// sandboxes the second task got none on runc and Docker. That needs the host's
/// `fs.inotify.max_user_instances` below the sandbox's 256 descriptors, as Debian's
/// default is; gVisor keeps no such quota.)
pub async fn a_task_cannot_take_another_tasks_kernel_quota(addr: SocketAddr) {
    let hog = "import ctypes, errno, time\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        held = []\n\
        while len(held) < 1000:\n\
        \x20   fd = libc.inotify_init1(0)\n\
        \x20   if fd < 0:\n\
        \x20       break\n\
        \x20   held.append(fd)\n\
        print(len(held), errno.errorcode.get(ctypes.get_errno(), '?'), flush=True)\n\
        time.sleep(12)";
    let other = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        fds = [libc.inotify_init1(0) for _ in range(5)]\n\
        print(sum(1 for fd in fds if fd >= 0))";
    let (a, b) = (client(addr).await, client(addr).await);
    let hog_id = a
        .submit(&json!({"language": "python", "code": hog, "limits": {"time_ms": 20_000}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.status(&hog_id).await.unwrap()["status"] != "running" {
        assert!(Instant::now() < deadline, "the first task never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // It takes what it can within milliseconds of its start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = b.run(code("python", other)).await.unwrap();
    assert_eq!(
        a.status(&hog_id).await.unwrap()["status"],
        "running",
        "the first task still holds its instances"
    );
    assert_eq!(r["stdout"], "5\n", "the second task's own instances: {r}");
    let held = a.wait(&hog_id, Duration::from_secs(30)).await.unwrap();
    let line = held["stdout"].as_str().unwrap();
    let count: usize = line.split(' ').next().unwrap().parse().unwrap();
    assert!(count >= 5, "the first task held {line}");
}

/// The runner image's root is read-only, `nosuid` and `nodev` in the sandbox: neither a
/// set-uid bit nor a device node in the image takes effect (runc engine: the worker
/// mounts that root, and every sandbox's root keeps its flags).
pub async fn the_root_is_nosuid_and_nodev(addr: SocketAddr) {
    let src = "for line in open('/proc/self/mountinfo'):\n\
        \x20   f = line.split()\n\
        \x20   if f[4] == '/':\n\
        \x20       print(sorted(set(f[5].split(',')) & {'ro', 'nosuid', 'nodev'}))";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(r["stdout"], "['nodev', 'nosuid', 'ro']\n", "{r}");
}

pub async fn only_tmp_is_writable_and_the_user_is_not_root(addr: SocketAddr) {
    let src = "import os\nprint(os.getuid(), os.geteuid())\ntry:\n    open('/etc/owned', 'w')\n    print('wrote /etc')\nexcept OSError as e:\n    print('refused', e.errno)\nopen('/tmp/ok', 'w').write('fine')\nprint(open('/tmp/ok').read())";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    let out = r["stdout"].as_str().unwrap();
    let mut lines = out.lines();
    let ids = lines.next().unwrap();
    assert!(
        !ids.starts_with("0 ") && !ids.ends_with(" 0"),
        "runs as non-root: {ids}"
    );
    assert!(lines.next().unwrap().starts_with("refused"), "{out}");
    assert_eq!(lines.next(), Some("fine"));
}

pub async fn the_workers_environment_is_not_visible(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("python", "import os\nprint(sorted(os.environ))"))
        .await
        .unwrap();
    let out = r["stdout"].as_str().unwrap();
    for secret in ["JWT_SECRET", "WORKER_TOKEN", "CARGO", "RUST"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
}

pub async fn cancel_kills_a_running_task(addr: SocketAddr) {
    let c = client(addr).await;
    let id = c
        .submit(&json!({"language": "python", "code": "import time\nprint('up', flush=True)\ntime.sleep(20)", "limits": {"time_ms": 20000}}))
        .await
        .unwrap();
    // Wait until it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status(&id).await.unwrap();
        if s["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c.cancel(&id).await;
    assert_eq!(r.status(), 204);
    let cancelled_at = Instant::now();
    let s = c.status(&id).await.unwrap();
    assert_eq!(s["status"], "cancelled");
    // The contract: its sandbox is killed within 1 s (the worker's cancel watch polls
    // every 200 ms; the kill itself is one engine call).
    loop {
        if crate::running_containers_of(&id).unwrap() == 0 {
            break;
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "the program still ran {:?} after the cancel",
            cancelled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the container is gone soon after.
    loop {
        if containers_of(&id).unwrap() == 0 {
            break;
        }
        // The worker stops it within a second; removal by a busy engine takes longer.
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(5),
            "container still there {:?} after the cancel",
            cancelled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = c.wait(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(r["verdict"], "cancelled");
    let r = c.cancel(&id).await;
    assert_eq!(r.status(), 409);
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

fn png_of(img: &image::RgbaImage) -> String {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

fn decode_png(b64: &str) -> image::RgbaImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgba8()
}

async fn filter(c: &Client, img_b64: &str, filter: Value) -> image::RgbaImage {
    let r = c
        .run(json!({"kind": "image", "image_base64": img_b64, "filter": filter}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    decode_png(r["image_base64"].as_str().unwrap())
}

pub async fn image_filters_on_a_real_png(addr: SocketAddr) {
    let c = client(addr).await;
    let original = image::RgbaImage::from_fn(16, 9, |x, y| {
        image::Rgba([(x * 15) as u8, (y * 25) as u8, 200, 255 - x as u8])
    });
    let b64 = png_of(&original);

    let neg = filter(&c, &b64, json!({"name": "negative"})).await;
    assert_eq!(
        neg.get_pixel(1, 2).0,
        [255 - 15, 255 - 50, 55, 254],
        "alpha is kept"
    );
    let neg_neg = filter(&c, &png_of(&neg), json!({"name": "negative"})).await;
    assert_eq!(neg_neg, original, "negative of negative is the original");

    let flipped = filter(&c, &b64, json!({"name": "flipx"})).await;
    assert_eq!(flipped.dimensions(), (16, 9));
    assert_eq!(flipped.get_pixel(0, 3), original.get_pixel(15, 3));
    assert_eq!(flipped.get_pixel(15, 8), original.get_pixel(0, 8));

    let blurred = filter(
        &c,
        &b64,
        json!({"name": "blur", "parameters": {"sigma": 2.0}}),
    )
    .await;
    assert_eq!(blurred.dimensions(), (16, 9));
    assert_ne!(blurred, original);
    let sharp = filter(
        &c,
        &b64,
        json!({"name": "sharpen", "parameters": {"sigma": 1.0}}),
    )
    .await;
    assert_eq!(sharp.dimensions(), (16, 9));

    // The PNG form of the result.
    let id = c
        .submit(&json!({"kind": "image", "image_base64": b64, "filter": {"name": "flipx"}}))
        .await
        .unwrap();
    c.wait(&id, Duration::from_secs(30)).await.unwrap();
    let r = c
        .http
        .get(c.url(&format!("/result/{id}")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
}

/// A PNG uploaded first (`POST /task/upload`, then a `PUT` to the URL it grants: the API
/// itself, or S3's presigned URL on AWS) is filtered by the task naming its key, as the
/// same PNG inline is; an upload serves several tasks of its owner, and no one else's.
pub async fn an_uploaded_png_is_filtered(addr: SocketAddr) {
    let c = client(addr).await;
    let original = image::RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([(x * 4) as u8, (y * 5) as u8, (x ^ y) as u8, 255])
    });
    let b64 = png_of(&original);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    let key = c.upload_png(&bytes).await.unwrap();
    let task = json!({"kind": "image", "image_key": key, "filter": {"name": "negative"}});
    let r = c.run(task.clone()).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    let uploaded = decode_png(r["image_base64"].as_str().unwrap());
    assert_eq!(
        uploaded,
        filter(&c, &b64, json!({"name": "negative"})).await
    );
    assert_eq!(
        uploaded.get_pixel(3, 2).0,
        [255 - 12, 255 - 10, 255 - 1, 255]
    );
    let again = c
        .run(json!({"kind": "image", "image_key": key, "filter": {"name": "flipx"}}))
        .await
        .unwrap();
    assert_eq!(again["verdict"], "ok", "{again}");

    let other = client(addr).await;
    let r = other
        .http
        .post(other.url("/task"))
        .bearer_auth(&other.token)
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

pub async fn non_png_and_oversized_png_are_refused(addr: SocketAddr) {
    let c = client(addr).await;
    let gif = base64::engine::general_purpose::STANDARD
        .encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!");
    let mut header = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(2, 2)
        .write_to(&mut header, image::ImageFormat::Png)
        .unwrap();
    let mut huge = header.into_inner();
    huge[16..20].copy_from_slice(&8000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&8000u32.to_be_bytes());
    let huge = base64::engine::general_purpose::STANDARD.encode(&huge);
    for img in [gif, huge] {
        let r = c
            .http
            .post(c.url("/task"))
            .bearer_auth(&c.token)
            .json(&json!({"kind": "image", "image_base64": img, "filter": {"name": "negative"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

pub async fn fork_bomb_and_disk_filling_end_with_a_verdict(addr: SocketAddr) {
    let c = client(addr).await;
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";
    let r = c
        .run(json!({"language": "python", "code": bomb, "limits": {"time_ms": 2000}}))
        .await
        .unwrap();
    assert_ne!(r["verdict"], "ok", "{r}");
    assert_eq!(r["status"], "completed");
    let fill = "f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'x' * 1048576)";
    let r = c
        .run(json!({"language": "python", "code": fill, "limits": {"time_ms": 5000}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "runtime_error", "{r}");
}

/// What a test runs against: something with an address, alive while it is held.
pub trait Stack {
    fn addr(&self) -> SocketAddr;
}

impl Stack for SocketAddr {
    fn addr(&self) -> SocketAddr {
        *self
    }
}

impl Stack for codebox_embedded::Running {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Stack for crate::procs::ProcessStack {
    fn addr(&self) -> SocketAddr {
        self.profile.addr()
    }
}

/// Declares one `#[tokio::test]` per suite function, against the stack `$stack` gives
/// (evaluated inside the test, so it may `.await`; held until the test ends).
#[macro_export]
macro_rules! suite {
    ($stack:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let stack = $stack;
                $crate::suite::$name($crate::suite::Stack::addr(&stack)).await
            }
        )*
    };
}

pub async fn metrics_count_tasks_and_requests(addr: SocketAddr) {
    let c = client(addr).await;
    let r = c.run(code("python", "print('m')")).await.unwrap();
    assert_eq!(r["verdict"], "ok");
    let text = c.metrics().await.unwrap();
    // The gateway's own metrics; the worker's are checked where the worker is a process
    // of its own (faults.rs) and, in the embedded profile, below.
    for needle in [
        "codebox_tasks_submitted_total{language=\"python\"}",
        "codebox_http_requests_total{route=\"/task\",method=\"POST\",status=\"202\"}",
        "codebox_http_request_duration_seconds_bucket{route=\"/status/{id}\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
}

/// The embedded profile serves the worker's metrics on the same `/metrics`.
pub async fn metrics_include_the_workers(addr: SocketAddr) {
    let c = client(addr).await;
    c.run(code("python", "print('w')")).await.unwrap();
    let text = c.metrics().await.unwrap();
    for needle in [
        "codebox_tasks_total{language=\"python\",verdict=\"ok\"}",
        "codebox_sandbox_seconds_bucket{language=\"python\"",
        "codebox_queue_wait_seconds_bucket",
        "codebox_tasks_in_flight",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
}

/// The whole suite, for every profile: `all_tests!(stack)`.
#[macro_export]
macro_rules! all_tests {
    ($stack:expr) => {
        $crate::suite!($stack;
            python_hello,
            c_and_cpp_hello_with_gcc_and_clang,
            stdin_and_args,
            any_bytes_a_program_writes_are_its_result,
            non_zero_exit_is_a_runtime_error,
            a_run_reports_exact_facts,
            deep_recursion_fits_the_default_stack,
            a_compiled_program_must_fit_its_run,
            merged_stderr_keeps_the_order,
            compiler_options_reach_the_compiler,
            a_cpu_limit_counts_work_not_waiting,
            a_program_cannot_forge_the_agents_report,
            a_programs_daemons_die_with_it,
            tasks_never_share_a_network_namespace,
            compile_error_shows_the_compiler_output,
            segfault_reports_the_signal,
            infinite_loop_hits_the_time_limit,
            big_allocation_hits_the_memory_limit,
            output_flood_is_capped,
            network_is_unreachable,
            the_sandbox_is_locked_down,
            only_tmp_is_writable_and_the_user_is_not_root,
            a_task_cannot_take_another_tasks_kernel_quota,
            the_workers_environment_is_not_visible,
            cancel_kills_a_running_task,
            languages_report_real_versions,
            image_filters_on_a_real_png,
            an_uploaded_png_is_filtered,
            non_png_and_oversized_png_are_refused,
            fork_bomb_and_disk_filling_end_with_a_verdict,
            metrics_count_tasks_and_requests,
            judging_reports_each_test,
            files_sit_beside_the_program,
            stop_on_failure_skips_the_rest,
            compare_modes_judge_the_output,
            a_slow_test_hits_the_time_limit_alone,
            sixty_four_tests_of_a_mebibyte_each_commit,
            wait_answers_with_the_finished_task,
            a_batch_takes_each_task_on_its_own,
            events_follow_a_task_to_its_end,
        );
    };
}

/// One user's backlog does not hold another user's task (the queue is FIFO, but a user
/// runs at most `LIMIT_RUNNING_TASKS`, 3, at once; a start past it goes back behind the
/// queue): with twelve 3-second tasks of one user queued first, the other user's task
/// starts before most of them. First in, first out, it would start after all twelve.
/// Fair shares are the queue's and the store's, so it runs once per queue and store
/// (memory, RabbitMQ + PostgreSQL, SQS + DynamoDB), each time on a stack of its own:
/// its backlog would hold a shared stack's slots for twelve seconds, and tests that
/// need a free slot in time (the kernel quota's) share those.
/// The tasks last longer than reaching the other user's task takes on the slowest stack
/// (on moto, under the whole suite, each deferral costs a few hundred milliseconds of
/// SQS and DynamoDB calls, and SQS keeps no order among the copies that come back).
pub async fn a_users_backlog_does_not_hold_another_users_task(addr: SocketAddr) {
    const BACKLOG: usize = 12;
    let (first, second) = (client(addr).await, client(addr).await);
    let slow = json!({"language": "python", "code": "import time\ntime.sleep(3)\nprint('slow')"});
    let mut backlog = Vec::new();
    for _ in 0..BACKLOG {
        backlog.push(first.submit(&slow).await.unwrap());
    }
    let fair = second
        .submit(&json!({"language": "python", "code": "print('fair')"}))
        .await
        .unwrap();
    let r = second.wait(&fair, Duration::from_secs(120)).await.unwrap();
    assert_eq!(r["stdout"], "fair\n", "{r}");
    let started = |s: &Value| {
        s["started_at"]
            .as_str()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
    };
    let fair_started = started(&second.status(&fair).await.unwrap()).unwrap();
    let mut before = 0;
    for id in &backlog {
        if started(&first.status(id).await.unwrap()).is_some_and(|t| t < fair_started) {
            before += 1;
        }
    }
    assert!(
        before <= BACKLOG / 2,
        "{before} of the first user's {BACKLOG} tasks started before the second user's"
    );
    for id in &backlog {
        let r = first.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(r["stdout"], "slow\n", "{r}");
    }
}

/// A C program reading two numbers, printing their sum.
const C_SUM: &str = "#include <stdio.h>\nint main(void){long a,b;if(scanf(\"%ld %ld\",&a,&b)!=2)return 3;printf(\"%ld\\n\",a+b);return 0;}\n";

fn verdicts(r: &Value) -> Vec<String> {
    r["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {r}"))
        .iter()
        .map(|t| t["verdict"].as_str().unwrap().to_owned())
        .collect()
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
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in [
        ("in.txt", "from the zip\n"),
        ("main.py", "print('the zip wins')"),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
    }
    let zip = base64::engine::general_purpose::STANDARD.encode(zip.finish().unwrap().into_inner());
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

/// `POST /task?wait=true`: the finished task in one request; past `wait_s`, the usual 202.
pub async fn wait_answers_with_the_finished_task(addr: SocketAddr) {
    let c = client(addr).await;
    let post = |query: &str, body: Value| {
        c.http
            .post(c.url(&format!("/task{query}")))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
    };
    let r = post("?wait=true", code("python", "print('hello')"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["result"]["verdict"], "ok");
    assert_eq!(body["result"]["stdout"], "hello\n");

    let started = Instant::now();
    let r = post(
        "?wait=true&wait_s=2",
        json!({"language": "python", "code": "import time\ntime.sleep(20)", "limits": {"time_ms": 20000}}),
    )
    .await
    .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 202);
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(8)).contains(&waited),
        "{waited:?}"
    );
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = c.cancel(&id).await;
    assert!(cancel.status().is_success(), "{}", cancel.status());
    for bad in [
        "?wait=true&wait_s=0",
        "?wait=true&wait_s=26",
        "?wait=maybe",
        "?waits=1",
    ] {
        let r = post(bad, code("python", "print(1)")).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

/// `POST /task/batch`: each task accepted or refused on its own, answers in order.
pub async fn a_batch_takes_each_task_on_its_own(addr: SocketAddr) {
    let c = client(addr).await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| {
            if i == 7 {
                code("brainfuck", "DISPLAY 'HI'.")
            } else {
                code("python", &format!("print({i})"))
            }
        })
        .collect();
    let batch = |body: Value| {
        c.http
            .post(c.url("/task/batch"))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
    };
    let r = batch(json!({"tasks": tasks})).await.unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    for (i, item) in items.iter().enumerate() {
        if i == 7 {
            assert_eq!(item["status"], 400, "{item}");
            assert!(
                item["detail"].as_str().unwrap().contains("brainfuck"),
                "{item}"
            );
            assert!(item.get("id").is_none());
        } else {
            assert_eq!(item["status"], "queued", "{item}");
        }
    }
    for i in [0usize, 19] {
        let id = items[i]["id"].as_str().unwrap();
        let r = c.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(r["stdout"], format!("{i}\n"), "{r}");
    }
    let many: Vec<Value> = (0..21).map(|_| code("python", "print(1)")).collect();
    for bad in [
        json!({"tasks": []}),
        json!({"tasks": many}),
        json!([code("python", "1")]),
    ] {
        assert_eq!(batch(bad).await.unwrap().status(), 400);
    }
}

/// A judged task's event stream, on every profile (AWS included, whose streams carry no
/// output): its status first, each test once, then `done` with the `GET /task/{id}` body,
/// numbered in order, and nothing after. A finished task's stream says the same at once;
/// another user's task is a 404.
pub async fn events_follow_a_task_to_its_end(addr: SocketAddr) {
    let c = client(addr).await;
    let tests = json!([
        {"stdin": "1 2\n", "expected_stdout": "3\n"},
        {"stdin": "2 2\n", "expected_stdout": "5\n"},
        {"stdin": "5 7\n", "expected_stdout": "12\n"},
    ]);
    let id = c
        .submit(&json!({"language": "c", "code": C_SUM, "tests": tests}))
        .await
        .unwrap();
    let check = |events: &[crate::SseEvent]| {
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"status"), "{names:?}");
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        let ids: Vec<String> = (0..events.len()).map(|n| n.to_string()).collect();
        let got: Vec<String> = events.iter().filter_map(|e| e.id.clone()).collect();
        assert_eq!(got, ids, "events are numbered in order");
        let done = &events[events.len() - 1].data;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["result"]["verdict"], "wrong_answer", "{done}");
        assert_eq!(done["result"]["passed"], 2, "{done}");
        let mut shown: Vec<(u64, String)> = events
            .iter()
            .filter(|e| e.name == "test")
            .map(|e| {
                (
                    e.data["index"].as_u64().unwrap(),
                    e.data["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            vec![
                (0, "accepted".to_owned()),
                (1, "wrong_answer".to_owned()),
                (2, "accepted".to_owned())
            ]
        );
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e.name == "status")
            .map(|e| e.data["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
        done.clone()
    };
    let live = check(&c.events(&id).await.unwrap());
    let task = c.get_json(&format!("/task/{id}")).await.unwrap();
    assert_eq!(live, task, "done carries the GET /task/{{id}} body");
    let again = c.events(&id).await.unwrap();
    let names: Vec<&str> = again.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["status", "test", "test", "test", "done"]);
    check(&again);
    let other = client(addr).await;
    let refused = other.open_events(&id).await.err().unwrap().to_string();
    assert!(refused.contains("404"), "{refused}");
}

/// Output streams while the program runs: a line every 200 ms for a second reaches a
/// client watching through `watch` (on compose, a gateway other than the one the task
/// was submitted to) as it is printed, and the stream ends with `done`.
pub async fn live_output_arrives_while_the_program_runs(submit: SocketAddr, watch: SocketAddr) {
    let c = client(submit).await;
    let program =
        "import time\nfor i in range(5):\n    print('line', i, flush=True)\n    time.sleep(0.2)\n";
    let id = c.submit(&code("python", program)).await.unwrap();
    let events = c.at(watch).events(&id).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let done = &events[events.len() - 1];
    let expected = "line 0\nline 1\nline 2\nline 3\nline 4\n";
    assert_eq!(done.data["result"]["stdout"], expected, "{}", done.data);
    let chunks: Vec<&crate::SseEvent> = events.iter().filter(|e| e.name == "stdout").collect();
    let streamed: String = chunks
        .iter()
        .map(|e| e.data["data"].as_str().unwrap())
        .collect();
    assert_eq!(
        streamed, expected,
        "the chunks are the output, once: {names:?}"
    );
    assert!(
        chunks.len() >= 3,
        "a line at a time, not all at the end: {names:?}"
    );
    let first = chunks[0].at;
    let ahead = done.at.duration_since(first);
    assert!(
        ahead >= std::time::Duration::from_millis(500),
        "the first line arrived {ahead:?} before the end"
    );
}

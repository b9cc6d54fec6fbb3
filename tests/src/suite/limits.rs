//! Limits and the facts a run reports: time, memory, CPU, output, processes and disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{client, code};

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

/// The facts count every process of the run, even those the program hides: children with
/// `SIGCHLD` ignored (the kernel reaps them, so they never reach a parent's rusage), each
/// doing the same CPU work (a loop of 40 million steps, about a second here) and touching
/// 150 MB. The cgroup saw all of it: from inside on runc, from the host on gVisor (the
/// Sentry's own accounts lose such a child).
///
/// The work is a count of steps, measured against a baseline of the same run's making
/// (one such child first, then two: the second counts at least 1.5× the first), not a
/// child's own clock: on gVisor under load that clock runs ahead of the CPU the host
/// gave (two children that each timed 1 s counted 1.3 s in all on the host).
pub async fn hidden_children_count_in_the_facts(addr: SocketAddr) {
    let hidden = |children: u32| {
        format!(
            "import os, signal\n\
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
            for _ in range({children}):\n\
            \x20   if os.fork() == 0:\n\
            \x20       b = bytearray(150 * 1024 * 1024)\n\
            \x20       for i in range(0, len(b), 4096):\n\
            \x20           b[i] = 1\n\
            \x20       for _ in range(40_000_000):\n\
            \x20           pass\n\
            \x20       os._exit(0)\n\
            # SIGCHLD ignored: wait blocks until every child is gone, then has no status.\n\
            try:\n\
            \x20   os.waitpid(-1, 0)\n\
            except ChildProcessError:\n\
            \x20   pass\n\
            print('done')"
        )
    };
    let c = client(addr).await;
    let mut facts = Vec::new();
    for children in [1, 2] {
        let r = c
            .run(json!({"language": "python", "code": hidden(children),
                "limits": {"time_ms": 20_000, "memory_mb": 512}}))
            .await
            .unwrap();
        assert_eq!(r["verdict"], "ok", "{r}");
        assert_eq!(r["stdout"], "done\n", "{r}");
        assert!(r["memory_kb"].as_u64().unwrap() >= 140_000, "{r}");
        facts.push(r);
    }
    let cpu = |r: &Value| r["cpu_time_ms"].as_u64().unwrap() as f64;
    let (one, two) = (&facts[0], &facts[1]);
    assert!(
        cpu(two) >= 1.5 * cpu(one),
        "two hidden children count at least 1.5x one: {one} then {two}"
    );
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

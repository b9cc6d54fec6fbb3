//! The agent binary on the host, driven through its stdin and stdout exactly as the
//! worker drives it inside a container (where it is PID 1 and kills the whole PID
//! namespace; here it kills the program's process group). The same facts are checked end
//! to end in the sandbox by `tests/tests/e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use codebox_agent::{Cap, Decoder, FileSpec, Frame, Job, Report, Stop, encode_job, key_hex};

const KEY: [u8; 32] = [42; 32];

static N: AtomicUsize = AtomicUsize::new(0);

struct Outcome {
    started: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    report: Report,
}

fn job(argv: &[&str]) -> Job {
    let dir = std::env::temp_dir().join(format!(
        "codebox-agent-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    Job {
        key: key_hex(&KEY),
        dir: dir.to_string_lossy().into_owned(),
        files: vec![],
        stdin_size: 0,
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        wall_ms: 5000,
        stdout: Cap {
            bytes: 1 << 20,
            kill: true,
        },
        stderr: Cap {
            bytes: 1 << 20,
            kill: true,
        },
        nproc: None,
        stack_bytes: None,
        cpu_ms: None,
    }
}

fn agent(input: &[u8]) -> (std::process::Output, Vec<Frame>) {
    agent_by(Command::new(env!("CARGO_BIN_EXE_codebox-agent")), input)
}

/// The agent started by `command` (the agent itself, or a shell that execs it).
fn agent_by(mut command: Command, input: &[u8]) -> (std::process::Output, Vec<Frame>) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let mut decoder = Decoder::new(KEY);
    decoder.push(&output.stdout);
    let mut frames = Vec::new();
    while let Some(f) = decoder.next_frame().unwrap() {
        frames.push(f);
    }
    assert_eq!(
        decoder.pending(),
        0,
        "nothing but frames on the agent's stdout"
    );
    (output, frames)
}

fn run_with(job: &Job, files: &[&[u8]], stdin: &[u8]) -> Outcome {
    outcome(job, agent(&encode_job(job, files, stdin).unwrap()))
}

fn outcome(job: &Job, (output, frames): (std::process::Output, Vec<Frame>)) -> Outcome {
    let _ = std::fs::remove_dir_all(&job.dir);
    assert!(output.status.success(), "{output:?}");
    let mut o = Outcome {
        started: false,
        stdout: vec![],
        stderr: vec![],
        report: match frames.last() {
            Some(Frame::Exit(r)) => r.clone(),
            other => panic!("the last frame is no report: {other:?}"),
        },
    };
    for f in &frames[..frames.len() - 1] {
        match f {
            Frame::Started => o.started = true,
            Frame::Stdout(b) => o.stdout.extend_from_slice(b),
            Frame::Stderr(b) => o.stderr.extend_from_slice(b),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    o
}

fn run(argv: &[&str]) -> Outcome {
    run_with(&job(argv), &[], b"")
}

#[test]
fn output_and_exit_code_are_reported_exactly() {
    let o = run(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert!(o.started);
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
    assert_eq!(o.report.stop, Stop::Exited);
    assert_eq!((o.report.exit_code, o.report.signal), (Some(3), None));
}

#[test]
fn an_exit_code_of_137_is_not_a_signal() {
    let o = run(&["sh", "-c", "exit 137"]);
    assert_eq!((o.report.exit_code, o.report.signal), (Some(137), None));
}

#[test]
fn death_by_signal_is_reported_as_the_signal() {
    let o = run(&["sh", "-c", "kill -9 $$"]);
    assert_eq!((o.report.exit_code, o.report.signal), (None, Some(9)));
    let o = run(&["sh", "-c", "kill -SEGV $$"]);
    assert_eq!(o.report.signal, Some(11));
}

#[test]
fn cpu_time_counts_work_not_waiting() {
    let busy = run(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done",
    ]);
    let idle = run(&["sleep", "0.5"]);
    assert!(busy.report.cpu_us > 100_000, "{:?}", busy.report);
    assert!(idle.report.cpu_us < 100_000, "{:?}", idle.report);
    assert!(idle.report.wall_us >= 500_000, "{:?}", idle.report);
}

/// Over a CPU limit the run is a time limit; waiting costs none of it. Outside a
/// container (as here) the cgroup is not the run's own: the program's process group in
/// `/proc` is what the agent watches.
#[test]
fn a_cpu_limit_ends_work_not_waiting() {
    let limited = |argv: &[&str]| {
        let mut j = job(argv);
        j.cpu_ms = Some(300);
        j.wall_ms = 10_000;
        run_with(&j, &[], b"").report
    };
    let busy = limited(&["sh", "-c", "while :; do :; done"]);
    assert_eq!(busy.stop, Stop::TimeLimit, "{busy:?}");
    assert!(busy.wall_us < 2_000_000, "{busy:?}");
    // Busy and writing a byte every millisecond: the channel never falls quiet, and the
    // limit still holds.
    let chatty = limited(&[
        "python3",
        "-c",
        "import sys, time\nt = time.time()\nwhile True:\n    if time.time() - t > 0.001:\n        sys.stdout.write('.'); sys.stdout.flush(); t = time.time()",
    ]);
    assert_eq!(chatty.stop, Stop::TimeLimit, "{chatty:?}");
    assert!(chatty.wall_us < 2_000_000, "{chatty:?}");
    let idle = limited(&["sleep", "1"]);
    assert_eq!(idle.stop, Stop::Exited, "{idle:?}");
    assert_eq!(idle.exit_code, Some(0), "{idle:?}");
}

#[test]
fn peak_memory_is_measured() {
    let o = run(&[
        "python3",
        "-c",
        "b = bytearray(100 * 1024 * 1024); print(len(b))",
    ]);
    assert_eq!(
        o.report.exit_code,
        Some(0),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.report.memory_kb >= 100_000, "{:?}", o.report);
}

#[test]
fn the_wall_limit_kills_the_program() {
    let mut j = job(&["sleep", "10"]);
    j.wall_ms = 300;
    let o = run_with(&j, &[], b"");
    assert_eq!(o.report.stop, Stop::TimeLimit);
    assert_eq!(o.report.signal, Some(9));
    assert!(o.report.wall_us < 2_000_000, "{:?}", o.report);
}

#[test]
fn output_caps_are_enforced_at_the_source() {
    let mut j = job(&["yes"]);
    j.stdout.bytes = 1000;
    let o = run_with(&j, &[], b"");
    assert_eq!(o.report.stop, Stop::OutputLimit);
    assert!(o.report.truncated);
    assert_eq!(o.stdout.len(), 1000);
    // A cap that does not kill keeps the head and lets the program finish.
    let mut j = job(&["sh", "-c", "head -c 5000 /dev/zero >&2; echo done"]);
    j.stderr = Cap {
        bytes: 100,
        kill: false,
    };
    let o = run_with(&j, &[], b"");
    assert_eq!(o.report.stop, Stop::Exited);
    assert!(o.report.truncated);
    assert_eq!((o.stderr.len(), o.stdout.as_slice()), (100, &b"done\n"[..]));
}

#[test]
fn a_program_cannot_forge_frames() {
    let fake = Frame::Exit(Report {
        stop: Stop::Exited,
        exit_code: Some(0),
        signal: None,
        wall_us: 0,
        cpu_us: 0,
        memory_kb: 0,
        truncated: false,
        stdout_bytes: 0,
        stderr_bytes: 0,
        oom_killed: None,
    })
    .encode(&KEY);
    let mut j = job(&["sh", "-c", "cat fake; cat fake >&2; exit 4"]);
    j.files.push(FileSpec {
        name: "fake".into(),
        mode: 0o644,
        size: 0,
    });
    let o = run_with(&j, &[&fake], b"");
    assert_eq!(o.stdout, fake, "the fake frame arrives as output, verbatim");
    assert_eq!(o.stderr, fake);
    assert_eq!(o.report.exit_code, Some(4), "and the real verdict stands");
    assert_eq!(
        (o.report.stdout_bytes, o.report.stderr_bytes),
        (fake.len() as u64, fake.len() as u64),
        "the report counts what was forwarded"
    );
}

#[test]
fn files_and_stdin_arrive_as_sent() {
    let mut j = job(&["sh", "-c", "./prog.sh; cat; ls -A"]);
    j.files.push(FileSpec {
        name: "prog.sh".into(),
        mode: 0o755,
        size: 0,
    });
    let o = run_with(&j, &[b"#!/bin/sh\necho from-file\n"], b"\x00in\xff");
    assert_eq!(
        o.stdout, b"from-file\n\x00in\xffprog.sh\n",
        "stdin is no file in the box"
    );
}

#[test]
fn what_the_program_leaves_behind_is_killed() {
    let o = run(&["sh", "-c", "sleep 30 & echo $!"]);
    let pid: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the background process {pid} is gone when the report is in"
    );
    assert!(o.report.wall_us < 5_000_000);
}

#[test]
fn a_missing_command_exits_127() {
    let o = run(&["no-such-command-here"]);
    assert_eq!(o.report.exit_code, Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-command-here"));
}

#[test]
fn a_malformed_job_fails_with_one_line() {
    let (output, frames) = agent(b"hello\n");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("codebox-agent: "), "{stderr}");
    assert!(matches!(frames.as_slice(), [Frame::Failed(_)]));
    // A job cut short: the header promises more file bytes than come.
    let mut j = job(&["true"]);
    j.files.push(FileSpec {
        name: "f".into(),
        mode: 0o644,
        size: 0,
    });
    let mut bytes = encode_job(&j, &[b"0123456789"], b"").unwrap();
    bytes.truncate(bytes.len() - 4);
    let (output, _) = agent(&bytes);
    let _ = std::fs::remove_dir_all(&j.dir);
    assert_eq!(output.status.code(), Some(2));
}

/// The threads of the agent: its main thread, one per output stream, the reaper.
const AGENT_THREADS: u32 = 4;

/// A pids cgroup of its own (v1's `pids` hierarchy or v2's root), removed when dropped.
struct PidsCgroup(std::path::PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> Self {
        let v1 = std::path::Path::new("/sys/fs/cgroup/pids");
        let v2 = std::path::Path::new("/sys/fs/cgroup");
        let parent = if v1.join("cgroup.procs").exists() {
            v1
        } else {
            let controllers =
                std::fs::read_to_string(v2.join("cgroup.subtree_control")).unwrap_or_default();
            assert!(
                controllers.split_whitespace().any(|c| c == "pids"),
                "this test needs a pids cgroup controller"
            );
            v2
        };
        let dir = parent.join(format!(
            "codebox-agent-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("making {dir:?} (make test runs as root): {e}"));
        std::fs::write(dir.join("pids.max"), max.to_string()).unwrap();
        PidsCgroup(dir)
    }

    /// The agent, moved into this cgroup by the shell that then becomes it.
    fn agent(&self) -> Command {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && exec \"$0\"",
            env!("CARGO_BIN_EXE_codebox-agent"),
        ])
        .arg(&self.0);
        c
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Every thread the agent needs exists before the program starts: with room in its pids
/// cgroup for the agent's threads and one process more, the program takes the last place
/// (it cannot fork) and the agent still watches it to its end and reports it. A thread
/// the agent started after the program would find no room, and the run would fail.
#[test]
fn the_agent_starts_no_thread_once_the_program_runs() {
    let cgroup = PidsCgroup::new(AGENT_THREADS + 1);
    let j = job(&["sh", "-c", "echo before; /bin/true; echo after $?"]);
    let (output, frames) = agent_by(cgroup.agent(), &encode_job(&j, &[], b"").unwrap());
    let o = outcome(&j, (output, frames));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.to_lowercase().contains("fork"),
        "the program had the last place of the cgroup: {stderr}"
    );
    assert!(o.started);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("before\n"),
        "{:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(o.report.stop, Stop::Exited);
}

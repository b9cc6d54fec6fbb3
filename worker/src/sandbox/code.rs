//! A code task in the sandboxes: its compile step (when its language has one), then its
//! run — or one run per test for a judged task, the program compiled once — and the
//! verdicts, from the facts the agent reported.

use std::time::Duration;

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::bytes::Bytes;
use codebox_core::domain::{CodeResult, TaskEvent, TestResult, Verdict};
use codebox_core::ports::{Sandbox, SandboxJob};
use tokio_util::sync::CancellationToken;

use super::step::{Cap, InFile, Step, StepOutcome, StopReason};
use super::{SandboxConfig, Sandboxes, commands, signals};

impl Sandboxes {
    async fn compile(
        &self,
        job: &SandboxJob,
        source: InFile,
        plan: &commands::Plan,
        argv: Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<Result<(Vec<u8>, Vec<u8>), CodeResult>, Error> {
        let c = &self.config;
        let limits = plan.compile_limits;
        let artifact_cap = artifact_cap(c, job.spec.limits.memory_mb);
        // The compiler's messages go to stderr; on success what it built (the artifact)
        // comes back on stdout — a multi-file program's whole directory, as a tar.
        let mut shell = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("\"$@\" 1>&2 || exit $?; {}", plan.handoff()),
            "sh".to_owned(),
        ];
        shell.extend(argv);
        let step = Step {
            task_id: job.task_id,
            argv: shell,
            files: with_task_files(source, &job.spec),
            stdin: vec![],
            wall: Duration::from_secs(limits.time_s),
            cpu: None,
            memory_mb: limits.memory_mb,
            stack_mb: None,
            stdout: Cap {
                bytes: artifact_cap,
                kill: true,
            },
            stderr: Cap {
                bytes: c.compile_output_bytes as u64,
                kill: false,
            },
            progress: None,
        };
        let out = self.step("compile", step, cancel).await?;
        let mut messages = out.stderr;
        let failure = match (out.reason, out.exit_code) {
            // A compile that succeeded keeps what the compiler said (its warnings).
            (StopReason::Exited, Some(0)) => return Ok(Ok((out.stdout, messages))),
            (StopReason::Cancelled, _) => return Ok(Err(CodeResult::empty(Verdict::Cancelled))),
            (StopReason::Exited, _) if out.oom_killed => format!(
                "compilation ran out of memory (limit {} MiB)",
                limits.memory_mb
            ),
            (StopReason::Exited, _) => String::new(),
            (StopReason::TimeLimit, _) => {
                format!("compilation exceeded its time limit of {} s", limits.time_s)
            }
            (StopReason::Interfered, _) => {
                "the compile step's sandbox channel was written to from inside".to_owned()
            }
            (StopReason::AgentLost, _) => {
                "the compile step's sandbox agent stopped without a report".to_owned()
            }
            (StopReason::OutputLimit, _) => format!(
                "the compiled program is larger than {} KiB, what its run can take (the run's memory limit of {} MiB less 4 MiB for the sandbox, at most {} MiB)",
                artifact_cap / 1024,
                job.spec.limits.memory_mb,
                c.tmpfs_bytes_for_artifact() / (1024 * 1024),
            ),
        };
        if !failure.is_empty() {
            if !messages.is_empty() && !messages.ends_with(b"\n") {
                messages.push(b'\n');
            }
            messages.extend_from_slice(failure.as_bytes());
        }
        Ok(Err(CodeResult {
            compile_output: Some(messages.into()),
            ..CodeResult::empty(Verdict::CompileError)
        }))
    }
}

/// Memory of a run the agent may need besides the program's file in `/tmp`.
const AGENT_ROOM: u64 = 4 * 1024 * 1024;

/// The largest compiled program the run step takes: the agent writes it to the run's
/// `/tmp`, a tmpfs whose pages count against the run's memory, so at most the run's
/// memory limit less the agent's room (a program that then has too little left ends with
/// its own `memory_limit`), within what the tmpfs and the file size limit hold. A larger
/// one is the task's compile error, not a sandbox killed while it is being filled (a
/// platform failure, retried into `failed`).
fn artifact_cap(config: &SandboxConfig, run_memory_mb: u32) -> u64 {
    let memory = (u64::from(run_memory_mb) * 1024 * 1024).saturating_sub(AGENT_ROOM);
    memory.min(config.tmpfs_bytes_for_artifact() as u64)
}

fn verdict_of(out: &StepOutcome) -> (Verdict, Option<i32>, Option<String>) {
    let signal = out.signal.map(|n| {
        signals::name(i64::from(n))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("SIG{n}"))
    });
    match out.reason {
        StopReason::Cancelled => (Verdict::Cancelled, None, None),
        StopReason::Interfered | StopReason::AgentLost => (Verdict::RuntimeError, None, None),
        StopReason::TimeLimit => (Verdict::TimeLimit, None, signal),
        StopReason::OutputLimit => (Verdict::OutputLimit, None, signal),
        // Facts from the agent: an exit code is an exit code (137 included), a signal is
        // a signal, and a SIGKILL is a memory limit only when the cgroup killed.
        StopReason::Exited if out.oom_killed => {
            (Verdict::MemoryLimit, None, Some("SIGKILL".to_owned()))
        }
        StopReason::Exited => match (out.exit_code, signal) {
            (Some(0), _) => (Verdict::Ok, Some(0), None),
            (Some(code), _) => (Verdict::RuntimeError, Some(code), None),
            (None, Some(signal)) => (Verdict::RuntimeError, None, Some(signal)),
            (None, None) => (Verdict::InternalError, None, None),
        },
    }
}

#[async_trait]
impl Sandbox for Sandboxes {
    async fn ping(&self) -> Result<(), Error> {
        Sandboxes::ping(self)
            .await
            .map_err(|e| Error::Unavailable(format!("{e:#}")))
    }

    #[tracing::instrument(skip_all, fields(task_id = %job.task_id, language = %job.spec.language))]
    async fn run(&self, job: &SandboxJob, cancel: CancellationToken) -> Result<CodeResult, Error> {
        let spec = &job.spec;
        let plan = commands::plan(spec)
            .ok_or_else(|| Error::Invalid(format!("this worker cannot run {}", spec.language)))?;
        let source = InFile {
            name: plan.source.to_owned(),
            bytes: spec.code.as_bytes().to_vec(),
            mode: 0o644,
        };
        let (program, compile_output) = match plan.compile.clone() {
            Some(argv) => match self.compile(job, source, &plan, argv, &cancel).await? {
                Ok((binary, warnings)) => (
                    InFile {
                        name: plan.artifact.to_owned(),
                        bytes: binary,
                        mode: 0o755,
                    },
                    Some(Bytes::from(warnings)),
                ),
                Err(result) if spec.is_judged() && result.verdict == Verdict::CompileError => {
                    return Ok(judged_result(
                        Vec::new(),
                        spec.tests.len(),
                        result.compile_output,
                    ));
                }
                Err(result) => return Ok(result),
            },
            None => (source, None),
        };
        if spec.is_judged() {
            return Ok(match self.judge(job, &plan.run, program, &cancel).await? {
                Some(tests) => judged_result(tests, spec.tests.len(), compile_output),
                None => CodeResult::empty(Verdict::Cancelled),
            });
        }
        // `runs` times (Judge0's `number_of_runs`), each in a fresh sandbox, until one
        // does not end `ok`.
        let mut runs = Vec::new();
        for _ in 0..spec.runs.max(1) {
            let step = run_step(job, &plan.run, program.clone(), &spec.stdin, &spec.args);
            let run = RunOutcome::of(self.step("run", step, &cancel).await?);
            let again = run.verdict == Verdict::Ok && !cancel.is_cancelled();
            runs.push(run);
            if !again {
                break;
            }
        }
        let mean = |fact: fn(&RunOutcome) -> Option<u64>| {
            let facts: Vec<u64> = runs.iter().filter_map(fact).collect();
            (!facts.is_empty()).then(|| facts.iter().sum::<u64>() / facts.len() as u64)
        };
        let (cpu_time_ms, memory_kb) = (mean(|r| r.cpu_time_ms), mean(|r| r.memory_kb));
        let run = runs
            .pop()
            .ok_or_else(|| Error::Backend(anyhow::anyhow!("a task made no run")))?;
        Ok(CodeResult {
            verdict: run.verdict,
            exit_code: run.exit_code,
            signal: run.signal,
            stdout: run.stdout.into(),
            stderr: run.stderr.into(),
            compile_output,
            time_ms: run.time_ms,
            cpu_time_ms,
            memory_kb,
            truncated: run.truncated,
            passed: None,
            total: None,
            tests: None,
        })
    }
}

/// The program's file, then the files the task placed beside it.
fn with_task_files(program: InFile, spec: &codebox_core::domain::CodeSpec) -> Vec<InFile> {
    std::iter::once(program)
        .chain(spec.files.iter().map(|f| InFile {
            name: f.path.clone(),
            bytes: f.content.as_bytes().to_vec(),
            mode: 0o644,
        }))
        .collect()
}

/// The run step of `job`'s program: the command `run`, then these arguments and stdin.
fn run_step(
    job: &SandboxJob,
    run: &[String],
    program: InFile,
    stdin: &Bytes,
    args: &[String],
) -> Step {
    let spec = &job.spec;
    let output_cap = u64::from(spec.limits.output_kb) * 1024;
    let mut argv = if spec.merge_stderr {
        // One pipe for both streams, so their bytes stay in the order written; the shell
        // replaces itself with the program.
        ["sh", "-c", "exec \"$@\" 2>&1", "sh"]
            .iter()
            .map(|w| (*w).to_owned())
            .chain(run.iter().cloned())
            .collect()
    } else {
        run.to_vec()
    };
    argv.extend(args.iter().cloned());
    Step {
        task_id: job.task_id,
        argv,
        cpu: spec
            .limits
            .cpu_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
        files: with_task_files(program, spec),
        stdin: stdin.as_bytes().to_vec(),
        wall: Duration::from_millis(u64::from(spec.limits.time_ms)),
        memory_mb: spec.limits.memory_mb,
        stack_mb: Some(spec.limits.stack_mb),
        stdout: Cap {
            bytes: output_cap,
            kill: true,
        },
        stderr: Cap {
            bytes: output_cap,
            kill: true,
        },
        // A judged task's tests run side by side: their output is in their results, and
        // their live events are the tests themselves.
        progress: if spec.is_judged() {
            None
        } else {
            job.progress.clone()
        },
    }
}

/// A run step's outcome as a result reports it.
struct RunOutcome {
    verdict: Verdict,
    exit_code: Option<i32>,
    signal: Option<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    time_ms: Option<u64>,
    cpu_time_ms: Option<u64>,
    memory_kb: Option<u64>,
    truncated: bool,
}

impl RunOutcome {
    fn of(out: StepOutcome) -> Self {
        let (verdict, exit_code, signal) = verdict_of(&out);
        let mut stderr = out.stderr;
        let note: &[u8] = match out.reason {
            StopReason::Interfered => {
                b"codebox: the program wrote into the sandbox agent's channel; its run is void\n"
            }
            StopReason::AgentLost => {
                b"codebox: the sandbox's agent stopped during the run, with no report of it\n"
            }
            _ => b"",
        };
        if !note.is_empty() {
            if !stderr.is_empty() && !stderr.ends_with(b"\n") {
                stderr.push(b'\n');
            }
            stderr.extend_from_slice(note);
        }
        Self {
            verdict,
            exit_code,
            signal,
            stdout: out.stdout,
            stderr,
            time_ms: Some(out.wall.as_millis() as u64),
            cpu_time_ms: out.cpu.map(|c| c.as_millis() as u64),
            memory_kb: out.memory_kb,
            truncated: out.truncated,
        }
    }
}

impl Sandboxes {
    /// Runs every test of a judged task with the program compiled once: each in a fresh
    /// sandbox with the task's limits, several at once on free slots — one after another
    /// with `stop_on_failure`, so that nothing runs after a failure. The output is judged
    /// here, on what the sandbox captured. `None` when the task was cancelled meanwhile.
    async fn judge(
        &self,
        job: &SandboxJob,
        run: &[String],
        program: InFile,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<TestResult>>, Error> {
        use futures::StreamExt;
        let spec = &job.spec;
        let judge = |index: usize, out: StepOutcome| {
            if out.reason == StopReason::Cancelled {
                return None;
            }
            let run = RunOutcome::of(out);
            let expected = spec.tests[index].expected_stdout.as_bytes();
            let verdict = codebox_core::judge::test_verdict(run.verdict, || {
                codebox_core::judge::output_matches(&run.stdout, expected, &spec.compare)
            });
            Some(TestResult {
                index: index as u32,
                verdict,
                exit_code: run.exit_code,
                signal: run.signal,
                stdout: run.stdout.into(),
                stderr: run.stderr.into(),
                time_ms: run.time_ms,
                cpu_time_ms: run.cpu_time_ms,
                memory_kb: run.memory_kb,
                truncated: run.truncated,
            })
        };
        // Each test is judged as it ends, and shown live; `None` when it was cancelled.
        let run_test = |index: usize| {
            let test = &spec.tests[index];
            let step = run_step(job, run, program.clone(), &test.stdin, &test.args);
            async move {
                let judged = self.step("run", step, cancel).await.map(|out| {
                    let test = judge(index, out);
                    if let (Some(test), Some(progress)) = (&test, &job.progress) {
                        progress.send(TaskEvent::Test { test: test.clone() });
                    }
                    test
                });
                (index, judged)
            }
        };
        let mut tests = Vec::with_capacity(spec.tests.len());
        if spec.stop_on_failure {
            for index in 0..spec.tests.len() {
                let (_, judged) = run_test(index).await;
                let Some(test) = judged? else {
                    return Ok(None);
                };
                let passed = test.verdict == Verdict::Accepted;
                tests.push(test);
                if !passed {
                    break;
                }
            }
            for index in tests.len()..spec.tests.len() {
                tests.push(TestResult::skipped(index as u32));
            }
        } else {
            let outcomes: Vec<_> = futures::stream::iter(0..spec.tests.len())
                .map(run_test)
                .buffered(self.config.slots.max(1))
                .collect()
                .await;
            // Every step has ended before anything is returned: none is dropped mid-run.
            for (_, judged) in outcomes {
                let Some(test) = judged? else {
                    return Ok(None);
                };
                tests.push(test);
            }
        }
        Ok(Some(tests))
    }
}

/// A judged task's result from its tests': the verdict of the first that failed (or
/// `accepted`), its exit code and signal, and the largest figures of any test. Output
/// stays with each test.
fn judged_result(
    tests: Vec<TestResult>,
    total: usize,
    compile_output: Option<Bytes>,
) -> CodeResult {
    // No test results: the program did not compile.
    let verdict = if tests.is_empty() {
        Verdict::CompileError
    } else {
        codebox_core::judge::overall(&tests)
    };
    let first_failed = tests
        .iter()
        .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped));
    let (exit_code, signal) = match first_failed {
        Some(t) => (t.exit_code, t.signal.clone()),
        None if tests.is_empty() => (None, None),
        None => (Some(0), None),
    };
    let max = |f: fn(&TestResult) -> Option<u64>| tests.iter().filter_map(f).max();
    CodeResult {
        verdict,
        exit_code,
        signal,
        stdout: Bytes::default(),
        stderr: Bytes::default(),
        compile_output,
        time_ms: max(|t| t.time_ms),
        cpu_time_ms: max(|t| t.cpu_time_ms),
        memory_kb: max(|t| t.memory_kb),
        truncated: tests.iter().any(|t| t.truncated),
        passed: Some(
            tests
                .iter()
                .filter(|t| t.verdict == Verdict::Accepted)
                .count() as u32,
        ),
        total: Some(total as u32),
        tests: Some(tests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent gone without a report after the program started is the run's verdict
    /// (with a line saying so), not a platform failure that would be retried and end
    /// `failed`; a run void for writing into the agent's channel likewise.
    #[test]
    fn a_run_whose_agent_stopped_is_a_runtime_error_with_a_note() {
        for (reason, note) in [
            (StopReason::AgentLost, "agent stopped during the run"),
            (StopReason::Interfered, "its run is void"),
        ] {
            let out = RunOutcome::of(StepOutcome {
                reason,
                stderr: b"partial".to_vec(),
                ..StepOutcome::cancelled()
            });
            assert_eq!(out.verdict, Verdict::RuntimeError);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                stderr.starts_with("partial\ncodebox: ") && stderr.contains(note),
                "{stderr}"
            );
        }
    }
}

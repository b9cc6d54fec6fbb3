#![allow(clippy::unwrap_used)]
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use codebox_core::domain::{CodeSpec, Task, TaskResult, TaskSpec, TaskStatus, Verdict};
use serde_json::json;

use super::*;
use codebox_core::domain::CodeResult;

fn request(language_id: u16) -> SubmissionRequest {
    serde_json::from_value(json!({"source_code": "print(1)", "language_id": language_id})).unwrap()
}

#[test]
fn a_submission_becomes_a_task() {
    let t = to_task(request(75), false).unwrap();
    assert_eq!(t.language.as_deref(), Some("c"));
    assert_eq!(t.compiler, Some(codebox_core::domain::Compiler::Clang));
    let mut r = request(71);
    r.source_code = Some(STANDARD.encode("print(2)"));
    r.expected_output = Some(STANDARD.encode("2\n"));
    r.stdin = Some(STANDARD.encode("x"));
    r.command_line_arguments = Some("a 'b c'".into());
    r.memory_limit = Some(128_000.0);
    r.cpu_time_limit = Some(2.5);
    r.stack_limit = Some(64_000.0);
    let t = to_task(r, true).unwrap();
    assert_eq!(t.code.as_deref(), Some("print(2)"));
    let tests = t.tests.unwrap();
    assert_eq!(tests[0].expected_stdout.as_deref(), Some("2\n"));
    assert_eq!(tests[0].stdin.as_deref(), Some("x"));
    assert_eq!(tests[0].args, Some(vec!["a".to_owned(), "b c".to_owned()]));
    let limits = t.limits.unwrap();
    // CPU time as asked, wall time and output as Judge0's defaults.
    assert_eq!(limits.cpu_ms, Some(2500));
    assert_eq!(
        (limits.time_ms, limits.memory_mb, limits.output_kb),
        (Some(10_000), Some(125), Some(1024))
    );
    assert_eq!(
        limits.stack_mb,
        Some(63),
        "64 000 KB, rounded up to whole MiB"
    );
}

/// Each limit asked for is the limit the task gets (red if one were dropped for Judge0's
/// default).
#[test]
fn each_limit_asked_is_the_limit_applied() {
    let mut r = request(71);
    r.wall_time_limit = Some(3.5);
    r.memory_limit = Some(300_000.0);
    r.max_file_size = Some(10.0);
    r.cpu_time_limit = Some(0.0);
    r.stack_limit = Some(8_192.0);
    let l = to_task(r, false).unwrap().limits.unwrap();
    assert_eq!(
        (l.time_ms, l.memory_mb, l.output_kb, l.cpu_ms, l.stack_mb),
        (Some(3500), Some(293), Some(10), None, Some(8)),
        "300 000 KB is 293 MiB rounded up; CPU 0 is none"
    );
}

/// Base64 as Ruby's encoder writes it, with line breaks, for the program and its input.
#[test]
fn base64_with_line_breaks_reads_as_judge0_reads_it() {
    let mut r = request(71);
    r.source_code = Some("cHJp\nbnQo\r\nMik=\n".into());
    r.stdin = Some("eA\n==".into());
    let t = to_task(r, true).unwrap();
    assert_eq!(t.code.as_deref(), Some("print(2)"));
    assert_eq!(t.stdin.as_deref(), Some("x"));
}

#[test]
fn what_codebox_cannot_do_is_refused() {
    type Spoil = Box<dyn Fn(&mut SubmissionRequest)>;
    let cases: Vec<Spoil> = vec![
        Box::new(|r| r.language_id = 9999),
        Box::new(|r| r.enable_network = Some(true)),
        Box::new(|r| r.compiler_options = Some("-O3".into())),
        Box::new(|r| r.cpu_time_limit = Some(30.0)),
        Box::new(|r| r.wall_time_limit = Some(0.0)),
        Box::new(|r| r.cpu_extra_time = Some(6.0)),
        Box::new(|r| r.max_file_size = Some(4096.0)),
        Box::new(|r| r.number_of_runs = Some(6.0)),
        Box::new(|r| r.number_of_runs = Some(0.0)),
        Box::new(|r| r.memory_limit = Some(-1.0)),
        Box::new(|r| r.stack_limit = Some(2_000_000.0)),
        Box::new(|r| r.command_line_arguments = Some("'unclosed".into())),
    ];
    for spoil in cases {
        let mut r = request(71);
        spoil(&mut r);
        let e = to_task(r, false).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.detail);
    }
    let mut r = request(71);
    r.source_code = Some("not base64!".into());
    assert_eq!(
        to_task(r, true).unwrap_err().status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Rails' leniency: numbers as strings, `null` and `""` as the default, booleans as
/// Rails reads them; the fields codebox takes map to its own.
#[test]
fn a_body_is_read_as_rails_reads_it() {
    let r: SubmissionRequest = serde_json::from_value(json!({
        "source_code": "int main(){}", "language_id": "50", "cpu_time_limit": "1.5",
        "wall_time_limit": null, "memory_limit": "", "redirect_stderr_to_stdout": "1",
        "enable_network": "false", "compiler_options": "-O0 -DX='a b'",
        "number_of_runs": "1", "max_file_size": 64,
    }))
    .unwrap();
    assert_eq!(r.language_id, 50);
    assert_eq!(r.enable_network, Some(false));
    let t = to_task(r, false).unwrap();
    assert_eq!(t.merge_stderr, Some(true));
    assert_eq!(t.compiler_options.as_deref(), Some("-O0 -DX='a b'"));
    let limits = t.limits.unwrap();
    assert_eq!(limits.cpu_ms, Some(1500));
    assert_eq!(limits.time_ms, Some(10_000));
    assert_eq!(limits.memory_mb, Some(125));
    assert_eq!(limits.output_kb, Some(64));
    // 0 is no CPU limit, as in Judge0.
    let mut r = request(71);
    r.cpu_time_limit = Some(0.0);
    assert_eq!(to_task(r, false).unwrap().limits.unwrap().cpu_ms, None);
    for bad in [json!("seventy-one"), json!(71.5), json!(-1), json!([71])] {
        let body = json!({"source_code": "print(1)", "language_id": bad});
        assert!(serde_json::from_value::<SubmissionRequest>(body).is_err());
    }
}

#[test]
fn runtime_errors_split_by_signal_as_judge0_does() {
    let task = |r: CodeResult| Task {
        status: TaskStatus::Completed,
        result: Some(TaskResult::Code(r)),
        ..Task::new(uuid::Uuid::nil(), TaskSpec::Code(CodeSpec::default()))
    };
    let signalled = |name: &str| CodeResult {
        signal: Some(name.to_owned()),
        ..CodeResult::empty(Verdict::RuntimeError)
    };
    for (result, id) in [
        (CodeResult::empty(Verdict::Ok), 3),
        (CodeResult::empty(Verdict::Accepted), 3),
        (CodeResult::empty(Verdict::WrongAnswer), 4),
        (CodeResult::empty(Verdict::TimeLimit), 5),
        (CodeResult::empty(Verdict::CompileError), 6),
        (signalled("SIGSEGV"), 7),
        (signalled("SIGXFSZ"), 8),
        (signalled("SIGFPE"), 9),
        (signalled("SIGABRT"), 10),
        (
            CodeResult {
                exit_code: Some(1),
                ..CodeResult::empty(Verdict::RuntimeError)
            },
            11,
        ),
        (signalled("SIGKILL"), 12),
        (CodeResult::empty(Verdict::InternalError), 13),
    ] {
        assert_eq!(
            status_of(&task(result.clone()), SignalReport::Signal).0,
            id,
            "{result:?}"
        );
    }
    // As Judge0 itself (JUDGE0_SIGNALS=nzec): a signal is bash's exit, 128 + its number.
    assert_eq!(
        status_of(&task(signalled("SIGSEGV")), SignalReport::Nzec),
        (11, Some("Exited with error status 139".to_owned()))
    );
    assert_eq!(
        status_of(&task(signalled("SIGFPE")), SignalReport::Nzec),
        (11, Some("Exited with error status 136".to_owned()))
    );
    // Not a program's own signal: the memory limit and the output limit stay theirs.
    for (verdict, id) in [(Verdict::MemoryLimit, 12), (Verdict::OutputLimit, 8)] {
        let r = CodeResult {
            signal: Some("SIGKILL".to_owned()),
            ..CodeResult::empty(verdict)
        };
        assert_eq!(status_of(&task(r), SignalReport::Nzec).0, id);
    }
    assert_eq!(signal_number("SIGSEGV"), Some(11));
    assert_eq!(signal_number("SIGKILL"), Some(9));
    assert_eq!(signal_number("SIG40"), Some(40));
}

#[test]
fn fields_are_checked() {
    assert_eq!(pick_fields(None).unwrap(), DEFAULT_FIELDS);
    assert_eq!(pick_fields(Some("*")).unwrap(), ALL_FIELDS);
    assert_eq!(
        pick_fields(Some("stdout, status")).unwrap(),
        ["stdout", "status"]
    );
    assert!(pick_fields(Some("stdout,password")).is_err());
}

/// `number_of_runs`: a plain submission runs that many times; one with an expected output
/// is that many tests, stopping at the first that fails.
#[test]
fn number_of_runs_is_runs_or_tests() {
    let mut r = request(71);
    r.number_of_runs = Some(3.9);
    let task = to_task(r, false).unwrap();
    assert_eq!(task.runs, Some(3), "an integer column: 3.9 is 3");
    assert!(task.tests.is_none());
    let mut r = request(71);
    r.number_of_runs = Some(5.0);
    r.expected_output = Some("1\n".into());
    let task = to_task(r, false).unwrap();
    assert_eq!(task.tests.as_ref().map(Vec::len), Some(5));
    assert_eq!(task.stop_on_failure, Some(Some(true)));
    assert_eq!(task.runs, None);
    let mut r = request(71);
    r.number_of_runs = Some(0.0);
    assert_eq!(
        to_task(r, false).unwrap_err().detail,
        "number_of_runs must be greater than 0"
    );
}

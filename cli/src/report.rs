//! What a finished task says on the terminal, and the exit status it ends the client with.

use std::io::IsTerminal;

use crate::fail::{Fail, Result, code};
use crate::follow::{Streamed, decode};
use crate::output::{self, kib, ms, say};
use crate::testdir::TestCase;
use codebox_api::{CodeOutputView, ResultView, TaskStatus, TaskView, TestView, Verdict};

/// Prints what the run did not show live (output, compile errors, test verdicts) and a
/// summary line on stderr; returns the exit status.
pub fn run(task: &TaskView, streamed: &Streamed, tests: Option<&[TestCase]>) -> Result<u8> {
    let r = code_result(task)?;
    let mut last_byte = streamed.last_byte;
    if r.verdict == Verdict::CompileError {
        let out = decode(r.compile_output.as_deref().unwrap_or_default(), r.base64());
        output::stderr(&out);
        if out.last().is_some_and(|b| *b != b'\n') {
            output::stderr(b"\n");
        }
        say("codebox: compile_error");
        return Ok(if tests.is_some() {
            code::NOT_ACCEPTED
        } else {
            code::COMPILE_ERROR
        });
    }
    for (is_stdout, printed, text) in [
        (true, streamed.stdout, &r.stdout),
        (false, streamed.stderr, &r.stderr),
    ] {
        let bytes = decode(text, r.base64());
        // With every event seen, what was printed is all of it; after a broken stream
        // the exact bytes from polling go on where the stream stopped.
        let rest = if printed == 0 {
            &bytes[..]
        } else if r.base64() && !streamed.complete {
            bytes.get(printed..).unwrap_or_default()
        } else {
            &[]
        };
        if rest.is_empty() {
            continue;
        }
        if is_stdout {
            output::stdout(rest)?;
        } else {
            output::stderr(rest);
        }
        last_byte = rest.last().copied();
    }
    if last_byte.is_some_and(|b| b != b'\n') && std::io::stderr().is_terminal() {
        output::stderr(b"\n");
    }
    if let Some(list) = &r.tests {
        for test in list.iter().filter(|t| !streamed.tests.contains(&t.index)) {
            test_line(test, tests.unwrap_or_default());
        }
    }
    let figures = figures(r.time_ms, r.cpu_time_ms, r.memory_kb);
    let truncated = if r.truncated {
        " (output cut at the output limit)"
    } else {
        ""
    };
    if tests.is_some() || r.total.is_some() {
        let (passed, total) = (r.passed.unwrap_or(0), r.total.unwrap_or(0));
        say(format!(
            "codebox: passed {passed}/{total} ({}){figures}",
            r.verdict
        ));
        return Ok(if r.verdict == Verdict::Accepted {
            0
        } else {
            code::NOT_ACCEPTED
        });
    }
    say(format!(
        "codebox: {}{}{figures}{truncated}",
        r.verdict,
        ending(r.exit_code, r.signal.as_deref())
    ));
    Ok(exit_status(r))
}

/// The result of a task that ended as it should; a failed or cancelled task is a
/// failure of its own.
pub fn finished_result(task: &TaskView) -> Result<&ResultView> {
    let id = task.status.id;
    match (task.status.status, &task.result) {
        (TaskStatus::Cancelled, _) => Err(Fail::new(
            code::NOT_ACCEPTED,
            format!("task {id} was cancelled"),
        )),
        (TaskStatus::Completed, Some(r)) => Ok(r),
        (status, r) => {
            let why = match r {
                Some(ResultView::Image(r)) => {
                    r.error.clone().unwrap_or_else(|| r.verdict.to_string())
                }
                Some(ResultView::Code(r)) => {
                    let err = String::from_utf8_lossy(&decode(&r.stderr, r.base64()))
                        .trim()
                        .to_owned();
                    if err.is_empty() {
                        r.verdict.to_string()
                    } else {
                        err
                    }
                }
                None => status.to_string(),
            };
            Err(Fail::unavailable(format!(
                "the service could not run task {id}: {why}"
            )))
        }
    }
}

/// The outcome of a program that ended as it should.
pub fn code_result(task: &TaskView) -> Result<&CodeOutputView> {
    match finished_result(task)? {
        ResultView::Code(r) => Ok(r),
        ResultView::Image(_) => Err(Fail::unavailable(format!(
            "task {} is an image task, not a program",
            task.status.id
        ))),
    }
}

/// The program's exit status as this command's: its exit code, 128 + a signal's number,
/// 124 for the time limit, 125 for a compile error.
pub fn exit_status(r: &CodeOutputView) -> u8 {
    match r.verdict {
        Verdict::CompileError => return code::COMPILE_ERROR,
        Verdict::TimeLimit => return code::TIME_LIMIT,
        _ => {}
    }
    if let Some(n) = r.signal.as_deref().and_then(signal_number) {
        return 128 + n;
    }
    match (r.exit_code, r.verdict) {
        (Some(c), _) => u8::try_from(c.rem_euclid(256)).unwrap_or(1),
        (None, Verdict::Ok) => 0,
        (None, Verdict::MemoryLimit) => 128 + 9,
        _ => 1,
    }
}

/// `SIGSEGV` → 11 (Linux numbers, as the service names them; `SIG40` for others).
pub fn signal_number(name: &str) -> Option<u8> {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    if let Some(i) = NAMES.iter().position(|n| *n == bare) {
        return u8::try_from(i + 1).ok();
    }
    bare.parse::<u8>().ok().filter(|n| (1..=127).contains(n))
}

fn ending(exit_code: Option<i32>, signal: Option<&str>) -> String {
    match (exit_code, signal) {
        (_, Some(signal)) => format!(", killed by {signal}"),
        (Some(c), None) => format!(", exit {c}"),
        (None, None) => String::new(),
    }
}

fn figures(time_ms: Option<u64>, cpu_ms: Option<u64>, memory_kb: Option<u64>) -> String {
    let mut out = String::new();
    if let Some(t) = time_ms {
        out.push_str(&format!(", time {}", ms(t)));
    }
    if let Some(t) = cpu_ms {
        out.push_str(&format!(", cpu {}", ms(t)));
    }
    if let Some(m) = memory_kb {
        out.push_str(&format!(", memory {}", kib(m)));
    }
    out
}

/// One test's verdict on stderr; for a wrong answer, where it went wrong (when the
/// expected output is at hand), for a crash, the end of its stderr.
pub fn test_line(test: &TestView, cases: &[TestCase]) {
    let index = usize::try_from(test.index).unwrap_or(usize::MAX);
    let case = cases.get(index);
    let name = case
        .map(|c| c.name.clone())
        .unwrap_or_else(|| format!("#{}", index.saturating_add(1)));
    let show_figures = test.verdict != Verdict::Skipped;
    say(format!(
        "  {name}: {}{}{}",
        test.verdict,
        if show_figures {
            ending(test.exit_code, test.signal.as_deref())
        } else {
            String::new()
        },
        if show_figures {
            figures(test.time_ms, None, None)
        } else {
            String::new()
        }
    ));
    match test.verdict {
        Verdict::WrongAnswer => {
            if let Some((line, expected, got)) =
                case.and_then(|c| first_difference(&c.expected_stdout, &test.stdout))
            {
                say(format!(
                    "      line {line}: expected {}, got {}",
                    shown(expected.as_deref()),
                    shown(got.as_deref())
                ));
            }
        }
        Verdict::RuntimeError | Verdict::MemoryLimit => {
            let lines: Vec<&str> = test.stderr.lines().collect();
            for line in &lines[lines.len().saturating_sub(3)..] {
                say(format!("      | {line}"));
            }
        }
        _ => {}
    }
}

fn shown(line: Option<&str>) -> String {
    match line {
        None => "nothing".to_owned(),
        Some(l) if l.chars().count() > 60 => {
            format!("{:?}…", l.chars().take(60).collect::<String>())
        }
        Some(l) => format!("{l:?}"),
    }
}

/// The first line where `got` differs from `expected`, compared as the service's
/// default (`lines`): trailing whitespace and trailing empty lines do not count.
pub fn first_difference(
    expected: &str,
    got: &str,
) -> Option<(usize, Option<String>, Option<String>)> {
    fn lines(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.lines().map(str::trim_end).collect();
        while v.last() == Some(&"") {
            v.pop();
        }
        v
    }
    let (e, g) = (lines(expected), lines(got));
    (0..e.len().max(g.len()))
        .find(|&i| e.get(i) != g.get(i))
        .map(|i| {
            (
                i + 1,
                e.get(i).map(|s| (*s).to_owned()),
                g.get(i).map(|s| (*s).to_owned()),
            )
        })
}

/// `codebox show`: the task, its figures and its output, on stdout.
pub fn show(task: &TaskView) -> Result<()> {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<10} {value}\n"));
    let t = &task.status;
    field("id", t.id.to_string());
    field("kind", t.kind.as_str().to_owned());
    field("status", t.status.to_string());
    field("created", codebox_api::time::format(&t.created_at));
    for (name, value) in [("started", &t.started_at), ("finished", &t.finished_at)] {
        if let Some(v) = value {
            field(name, codebox_api::time::format(v));
        }
    }
    if let Some(d) = t.duration_ms.and_then(|d| u64::try_from(d).ok()) {
        field("duration", ms(d));
    }
    let mut texts: Vec<(&str, &str)> = Vec::new();
    match &task.result {
        None => {}
        Some(ResultView::Image(r)) => {
            field("verdict", r.verdict.to_string());
            if let Some(e) = &r.error {
                field("error", e.clone());
            }
            if let Some(image) = &r.image_base64 {
                field("image", format!("PNG, {} bytes base64", image.len()));
            }
        }
        Some(ResultView::Code(r)) => {
            field("verdict", r.verdict.to_string());
            if let Some(c) = r.exit_code {
                field("exit code", c.to_string());
            }
            if let Some(s) = &r.signal {
                field("signal", s.clone());
            }
            if let Some(t) = r.time_ms {
                field("time", ms(t));
            }
            if let Some(t) = r.cpu_time_ms {
                field("cpu time", ms(t));
            }
            if let Some(m) = r.memory_kb {
                field("memory", kib(m));
            }
            if let (Some(p), Some(t)) = (r.passed, r.total) {
                field("passed", format!("{p}/{t}"));
            }
            if r.truncated {
                field(
                    "truncated",
                    "yes (output cut at the output limit)".to_owned(),
                );
            }
            for t in r.tests.iter().flatten() {
                field(
                    &format!("test {}", t.index + 1),
                    format!(
                        "{}{}{}",
                        t.verdict,
                        ending(t.exit_code, t.signal.as_deref()),
                        figures(t.time_ms, None, None)
                    ),
                );
            }
            texts = vec![
                (
                    "compile output",
                    r.compile_output.as_deref().unwrap_or_default(),
                ),
                ("stdout", r.stdout.as_str()),
                ("stderr", r.stderr.as_str()),
            ];
        }
    }
    for (name, text) in texts {
        if !text.is_empty() {
            out.push_str(&format!("--- {name} ---\n{text}"));
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    output::stdout(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: &str, exit_code: Option<i32>, signal: Option<&str>) -> CodeOutputView {
        CodeOutputView {
            verdict: serde_json::from_value(serde_json::json!(verdict)).unwrap(),
            exit_code,
            signal: signal.map(Into::into),
            stdout: String::new(),
            stderr: String::new(),
            compile_output: None,
            time_ms: None,
            cpu_time_ms: None,
            memory_kb: None,
            truncated: false,
            encoding: codebox_api::OutputEncoding::Utf8,
            passed: None,
            total: None,
            tests: None,
        }
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(&result("ok", Some(0), None)), 0);
        assert_eq!(exit_status(&result("runtime_error", Some(3), None)), 3);
        assert_eq!(exit_status(&result("runtime_error", Some(137), None)), 137);
        assert_eq!(
            exit_status(&result("runtime_error", None, Some("SIGSEGV"))),
            139
        );
        assert_eq!(
            exit_status(&result("runtime_error", None, Some("SIG40"))),
            168
        );
        assert_eq!(
            exit_status(&result("memory_limit", None, Some("SIGKILL"))),
            137
        );
        assert_eq!(exit_status(&result("memory_limit", None, None)), 137);
        assert_eq!(
            exit_status(&result("time_limit", None, Some("SIGKILL"))),
            124
        );
        assert_eq!(exit_status(&result("compile_error", None, None)), 125);
        assert_eq!(exit_status(&result("output_limit", None, None)), 1);
        assert_eq!(
            exit_status(&result("output_limit", None, Some("SIGXFSZ"))),
            153
        );
    }

    #[test]
    fn signals_by_name() {
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("SIGSYS"), Some(31));
        assert_eq!(signal_number("SIGABRT"), Some(6));
        assert_eq!(signal_number("SIGNOPE"), None);
    }

    #[test]
    fn differences_are_found_as_lines_compare() {
        assert_eq!(first_difference("3\n", "3  \n\n"), None);
        assert_eq!(
            first_difference("1\n2\n", "1\n3\n"),
            Some((2, Some("2".into()), Some("3".into())))
        );
        assert_eq!(
            first_difference("1\n2\n", "1\n"),
            Some((2, Some("2".into()), None))
        );
        assert_eq!(shown(None), "nothing");
        assert_eq!(shown(Some("a\"b")), "\"a\\\"b\"");
    }

    #[test]
    fn failed_and_cancelled_tasks_are_failures() {
        let id = uuid::Uuid::nil();
        let task = |status: &str, result: Option<ResultView>| {
            let mut view = serde_json::json!({
                "id": id, "kind": "code", "status": status,
                "created_at": "2026-12-06T10:00:00.000Z", "started_at": null,
                "finished_at": null, "duration_ms": null,
            });
            view["result"] = serde_json::to_value(result).unwrap();
            serde_json::from_value::<TaskView>(view).unwrap()
        };
        let e = finished_result(&task("cancelled", None)).unwrap_err();
        assert_eq!(
            e,
            Fail::new(code::NOT_ACCEPTED, format!("task {id} was cancelled"))
        );
        let failed = ResultView::Image(codebox_api::ImageOutputView {
            verdict: Verdict::InternalError,
            image_base64: None,
            error: Some("not a PNG".into()),
        });
        let e = finished_result(&task("failed", Some(failed))).unwrap_err();
        assert_eq!(
            e,
            Fail::unavailable(format!("the service could not run task {id}: not a PNG"))
        );
        let crashed = ResultView::Code(result("internal_error", None, None));
        let e = finished_result(&task("failed", Some(crashed))).unwrap_err();
        assert_eq!(
            e,
            Fail::unavailable(format!(
                "the service could not run task {id}: internal_error"
            ))
        );
        let ok = ResultView::Code(result("ok", Some(0), None));
        assert!(finished_result(&task("completed", Some(ok))).is_ok());
    }
}

//! Judging: a test's output against its expected output, and a judged task's verdict from
//! its tests'. Done by the worker on the captured output, never inside the sandbox, so a
//! program cannot influence how it is judged.

use crate::domain::{Compare, CompareMode, TestResult, Verdict};

/// Whether `actual` passes for `expected` under `compare`.
pub fn output_matches(actual: &[u8], expected: &[u8], compare: &Compare) -> bool {
    match compare.mode {
        CompareMode::Exact => actual == expected,
        CompareMode::Lines => significant_lines(actual) == significant_lines(expected),
        CompareMode::Tokens => {
            let mut a = tokens(actual);
            let mut e = tokens(expected);
            loop {
                match (a.next(), e.next()) {
                    (None, None) => return true,
                    (Some(x), Some(y)) if token_eq(x, y, compare) => {}
                    _ => return false,
                }
            }
        }
    }
}

/// Lines without their trailing whitespace (`\r` included), trailing empty lines dropped.
fn significant_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&c| c == b'\n').map(trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

fn tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|c| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

/// Equal bytes, or — with a tolerance — two finite numbers within it (absolute, or
/// relative to the expected value).
fn token_eq(actual: &[u8], expected: &[u8], compare: &Compare) -> bool {
    if actual == expected {
        return true;
    }
    if compare.abs_tol.is_none() && compare.rel_tol.is_none() {
        return false;
    }
    let (Some(a), Some(e)) = (number(actual), number(expected)) else {
        return false;
    };
    let diff = (a - e).abs();
    compare.abs_tol.is_some_and(|t| diff <= t)
        || compare.rel_tol.is_some_and(|t| diff <= t * e.abs())
}

fn number(token: &[u8]) -> Option<f64> {
    std::str::from_utf8(token)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

/// A test's verdict from its run's: a clean exit passes or not on its output; every other
/// ending is the test's verdict as it is.
pub fn test_verdict(run: Verdict, output_passes: impl FnOnce() -> bool) -> Verdict {
    match run {
        Verdict::Ok if output_passes() => Verdict::Accepted,
        Verdict::Ok => Verdict::WrongAnswer,
        other => other,
    }
}

/// A judged task's verdict: `accepted` when every test passed, else the verdict of the
/// first test (in order) that did not.
pub fn overall(tests: &[TestResult]) -> Verdict {
    tests
        .iter()
        .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped))
        .map_or(Verdict::Accepted, |t| t.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(mode: CompareMode) -> Compare {
        Compare {
            mode,
            ..Compare::default()
        }
    }

    #[test]
    fn exact_is_every_byte() {
        let c = mode(CompareMode::Exact);
        assert!(output_matches(b"3\n", b"3\n", &c));
        assert!(!output_matches(b"3", b"3\n", &c));
        assert!(!output_matches(b"3 \n", b"3\n", &c));
    }

    #[test]
    fn lines_ignore_trailing_whitespace_and_trailing_empty_lines() {
        let c = Compare::default();
        assert_eq!(c.mode, CompareMode::Lines);
        assert!(output_matches(b"1 2\r\n3\t\n\n\n", b"1 2\n3", &c));
        assert!(output_matches(b"", b"\n\n", &c));
        // Leading whitespace, inner spaces and empty lines in the middle count.
        assert!(!output_matches(b" 1 2\n", b"1 2\n", &c));
        assert!(!output_matches(b"1  2\n", b"1 2\n", &c));
        assert!(!output_matches(b"1\n\n2\n", b"1\n2\n", &c));
        assert!(!output_matches(b"1\n2\n", b"1\n", &c));
    }

    #[test]
    fn tokens_ignore_layout_and_compare_numbers_within_a_tolerance() {
        let plain = mode(CompareMode::Tokens);
        assert!(output_matches(b"1  2\n\n3 ", b"1 2 3\n", &plain));
        assert!(!output_matches(b"1 2", b"1 2 3", &plain));
        assert!(!output_matches(b"0.3333333", b"0.333333333", &plain));
        let abs = Compare {
            abs_tol: Some(1e-6),
            ..plain
        };
        assert!(output_matches(b"0.3333333", b"0.333333333", &abs));
        assert!(!output_matches(b"0.3334", b"0.333333333", &abs));
        // Words stay words; a tolerance never makes "nan" or "inf" a number.
        assert!(!output_matches(b"yes", b"no", &abs));
        assert!(!output_matches(b"nan", b"NaN", &abs));
        assert!(!output_matches(b"inf", b"1e308", &abs));
        let rel = Compare {
            rel_tol: Some(1e-3),
            ..plain
        };
        assert!(output_matches(b"1000.5", b"1000", &rel));
        assert!(!output_matches(b"1002", b"1000", &rel));
        assert!(!output_matches(b"0.0001", b"0", &rel));
    }

    #[test]
    fn a_task_fails_on_its_first_failing_test() {
        let t = |index: u32, verdict| TestResult {
            verdict,
            ..TestResult::skipped(index)
        };
        assert_eq!(overall(&[]), Verdict::Accepted);
        assert_eq!(
            overall(&[t(0, Verdict::Accepted), t(1, Verdict::Accepted)]),
            Verdict::Accepted
        );
        assert_eq!(
            overall(&[
                t(0, Verdict::Accepted),
                t(1, Verdict::TimeLimit),
                t(2, Verdict::WrongAnswer),
                t(3, Verdict::Skipped),
            ]),
            Verdict::TimeLimit
        );
        assert_eq!(test_verdict(Verdict::Ok, || true), Verdict::Accepted);
        assert_eq!(test_verdict(Verdict::Ok, || false), Verdict::WrongAnswer);
        assert_eq!(
            test_verdict(Verdict::RuntimeError, || true),
            Verdict::RuntimeError
        );
    }
}

//! A task's kind and status, the verdicts, and how outputs are written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Code,
    Image,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Image => "image",
        }
    }
}

/// `queued → running → completed | failed`, and `queued | running → cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The rule every caller waits by: a task in one of these statuses changes no more.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a status as the API writes it is a finished one (an unknown word is not).
    pub fn is_finished_str(s: &str) -> bool {
        Self::parse(s).is_some_and(Self::is_finished)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    Cancelled,
    InternalError,
    /// Judged: every test passed (or, for one test, it passed).
    Accepted,
    /// Judged: the program ended normally but its output was not the expected one.
    WrongAnswer,
    /// Judged: not run, after an earlier test failed with `stop_on_failure`.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::WrongAnswer => "wrong_answer",
            Self::Skipped => "skipped",
            Self::Ok => "ok",
            Self::CompileError => "compile_error",
            Self::RuntimeError => "runtime_error",
            Self::TimeLimit => "time_limit",
            Self::MemoryLimit => "memory_limit",
            Self::OutputLimit => "output_limit",
            Self::Cancelled => "cancelled",
            Self::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How `stdout`, `stderr` and `compile_output` are written in a result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum OutputEncoding {
    /// As text; byte sequences that are not UTF-8 become U+FFFD.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// The exact bytes, base64-encoded.
    #[serde(rename = "base64")]
    Base64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Each word is the serde name, both ways, and only the last three are finished.
    #[test]
    fn statuses_are_written_as_serde_writes_them() {
        for status in TaskStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                TaskStatus::is_finished_str(status.as_str()),
                status.is_finished()
            );
        }
        let finished: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(
            finished,
            [
                TaskStatus::Completed,
                TaskStatus::Failed,
                TaskStatus::Cancelled
            ]
        );
        assert!(!TaskStatus::is_finished_str("done"));
        for verdict in [
            Verdict::Ok,
            Verdict::CompileError,
            Verdict::RuntimeError,
            Verdict::TimeLimit,
            Verdict::MemoryLimit,
            Verdict::OutputLimit,
            Verdict::Cancelled,
            Verdict::InternalError,
            Verdict::Accepted,
            Verdict::WrongAnswer,
            Verdict::Skipped,
        ] {
            assert_eq!(serde_json::to_value(verdict).unwrap(), verdict.as_str());
        }
        for kind in [TaskKind::Code, TaskKind::Image] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}

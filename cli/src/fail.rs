//! Why a command failed, as one line for stderr and the exit status it ends with.

use std::fmt;

/// The exit statuses of the client itself (the program's own come through unchanged).
/// Client failures follow sysexits(3), so scripts can tell them from a program's.
pub mod code {
    /// `--tests`: not every test passed.
    pub const NOT_ACCEPTED: u8 = 1;
    /// Bad usage (clap answers the same).
    pub const USAGE: u8 = 2;
    /// The server refused the request (invalid task, unknown id, already finished).
    pub const REFUSED: u8 = 65;
    /// An input file or folder cannot be read (or is not text).
    pub const NO_INPUT: u8 = 66;
    /// The server cannot be reached, failed, or could not run the task.
    pub const UNAVAILABLE: u8 = 69;
    /// An output file cannot be written.
    pub const CANNOT_WRITE: u8 = 73;
    /// Too many requests (429): try again later.
    pub const TRY_LATER: u8 = 75;
    /// Not logged in, token refused, or wrong username or password.
    pub const NO_PERMISSION: u8 = 77;
    /// The config file cannot be read or written.
    pub const CONFIG: u8 = 78;
    /// The program ran out of time.
    pub const TIME_LIMIT: u8 = 124;
    /// The program did not compile.
    pub const COMPILE_ERROR: u8 = 125;
    /// Interrupted (Ctrl-C); the task was cancelled.
    pub const INTERRUPTED: u8 = 130;
    /// Our stdout was closed (`codebox run … | head`): quietly, as a shell would see it.
    pub const BROKEN_PIPE: u8 = 141;
}

/// The exit statuses as `codebox --help` and the README list them.
pub const EXIT_CODES: &str = "\
Exit status:
  N        run: the program's own exit code when it ran and exited
  128+N    run: the program was killed by signal N (137: SIGKILL, e.g. its memory limit)
  124      run: the program exceeded its time limit
  125      run: the program did not compile
  0, 1     run --tests: 0 when every test passed, 1 otherwise (a compile error too)
  1        run: the task ended without an exit code of its own (cancelled, output limit)
  2        usage error, or the language of FILE cannot be told (use --lang)
  65       the server refused the request (invalid task, unknown task id, already finished)
  66       an input file or folder cannot be read
  69       the server cannot be reached, failed, or could not run the task
  73       an output file cannot be written
  75       too many requests: the server said when to retry
  77       not logged in, token refused, or wrong username or password
  78       the config file cannot be read or written
  130      interrupted by Ctrl-C (the task is cancelled on the server)";

/// A failure: one line (without the `codebox: ` prefix) and an exit status. An empty
/// message prints nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Fail>;

impl Fail {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        // One line, whatever a server or the system put into it.
        let message: String = message.into();
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Self { code, message }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(code::USAGE, message)
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::new(code::NO_INPUT, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(code::UNAVAILABLE, message)
    }

    /// A write to our own stdout failed: quietly for a closed pipe.
    pub fn stdout(e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::new(code::BROKEN_PIPE, "")
        } else {
            Self::new(
                code::CANNOT_WRITE,
                format!("cannot write to stdout: {}", io_reason(e)),
            )
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An I/O error as a short reason: "connection refused", "no such file or directory".
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    // "No such file or directory (os error 2)" → "no such file or directory"
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    lower_first(text)
}

pub fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if !chars.as_str().starts_with(|c: char| c.is_uppercase()) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let f = Fail::unavailable("first\nsecond  third\n");
        assert_eq!(f.message, "first second third");
    }

    #[test]
    fn io_reasons_are_short() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&e), "no such file or directory");
        assert_eq!(lower_first("HTTP error"), "HTTP error");
        assert_eq!(lower_first("Connection refused"), "connection refused");
    }
}

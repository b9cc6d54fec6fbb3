//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::fail::EXIT_CODES;

#[derive(Debug, Parser)]
#[command(
    name = "codebox",
    version,
    about = "Run programs in codebox's sandboxes, judge them on test cases, filter images",
    long_about = "Run programs in codebox's sandboxes, judge them on test cases, filter images.\n\n\
        The server is --server, else CODEBOX_SERVER, else the one `codebox login` saved, else \
        http://127.0.0.1:8080. The token is CODEBOX_TOKEN, else the one `codebox login` saved \
        in $XDG_CONFIG_HOME/codebox/config.toml (~/.config/codebox/config.toml).",
    after_long_help = EXIT_CODES
)]
pub struct Cli {
    /// The API's base URL
    #[arg(long, global = true, env = "CODEBOX_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Print the API's JSON answer on stdout (and nothing else there)
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and save the token in the config file (mode 0600)
    Login(Credentials),
    /// Create an account, then log in as `login` does
    Register(Credentials),
    /// Revoke the token and forget it
    Logout,
    /// Run a program (its output live), or judge it on test cases with --tests
    Run(RunArgs),
    /// Filter a PNG image
    Image(ImageArgs),
    /// List your tasks, newest first
    Ls(LsArgs),
    /// Show a task: status, verdict, figures and output
    Show {
        /// The task's id
        id: String,
    },
    /// Cancel a queued or running task
    Cancel {
        /// The task's id
        id: String,
    },
    /// List the languages the server runs, with their versions
    Languages,
    /// Print the key your webhook calls are signed with, to check them by
    WebhookKey,
    /// Print a shell completion script (e.g. `codebox completions bash > /etc/bash_completion.d/codebox`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct Credentials {
    /// The account's name (asked for when left out)
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from the first line of stdin instead of asking for it
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program's source file; its extension tells the language
    pub file: PathBuf,
    /// The language id (see `codebox languages`), when the extension does not tell it
    #[arg(long, short, value_name = "ID")]
    pub lang: Option<String>,
    /// A file for the program's stdin (`-` for this command's own stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "tests")]
    pub stdin: Option<PathBuf>,
    /// Judge the program on the NAME.in / NAME.out pairs of DIR, in the order of their names
    #[arg(long, value_name = "DIR")]
    pub tests: Option<PathBuf>,
    /// Wall-clock limit of the run: 2s, 1.5s, 500ms (a bare number is seconds)
    #[arg(long, short, value_name = "TIME", value_parser = parse_time_ms)]
    pub time_limit: Option<u64>,
    /// Memory limit: 256M, 1G (a bare number is MiB)
    #[arg(long, short, value_name = "SIZE", value_parser = parse_memory_mb)]
    pub memory_limit: Option<u64>,
    /// Stack limit of the program: 64M, 512M (a bare number is MiB; default 64M)
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_mb)]
    pub stack_limit: Option<u64>,
    /// CPU time of the run, all its processes together: 1s, 500ms (waiting costs none)
    #[arg(long, value_name = "TIME", value_parser = parse_time_ms)]
    pub cpu_limit: Option<u64>,
    /// Options for the compiler, as one string: "-O0 -DDEBUG" (compiled languages)
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    pub compiler_options: Option<String>,
    /// The program's stderr into its stdout, in the order written
    #[arg(long)]
    pub merge_stderr: bool,
    /// The compiler of a C or C++ program
    #[arg(long, value_enum)]
    pub compiler: Option<Compiler>,
    /// Arguments for the program, after `--`
    #[arg(last = true, value_name = "ARGS", conflicts_with = "tests")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Compiler {
    Gcc,
    Clang,
}

impl Compiler {
    pub fn id(self) -> &'static str {
        match self {
            Self::Gcc => "gcc",
            Self::Clang => "clang",
        }
    }
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The PNG to filter
    pub input: PathBuf,
    /// The filter
    #[arg(long, short, value_enum)]
    pub filter: Filter,
    /// The gaussian's sigma for blur and sharpen (0.1–50; the server's default when left out)
    #[arg(long, short)]
    pub sigma: Option<f64>,
    /// Where to write the filtered PNG (`-` for stdout)
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Filter {
    Blur,
    Sharpen,
    Negative,
    Flipx,
}

impl Filter {
    pub fn id(self) -> &'static str {
        match self {
            Self::Blur => "blur",
            Self::Sharpen => "sharpen",
            Self::Negative => "negative",
            Self::Flipx => "flipx",
        }
    }

    pub fn takes_sigma(self) -> bool {
        matches!(self, Self::Blur | Self::Sharpen)
    }
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Tasks per page (1–100)
    #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Start at this page (the `next` a previous page printed)
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Every page, not only the first
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

/// `2s`, `1.5s`, `500ms`, `2` (seconds) → milliseconds.
pub fn parse_time_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1000.0)
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n * scale <= 1e12 => Ok((n * scale).round() as u64),
        _ => Err(format!("{s:?} is not a time like 2s, 1.5s or 500ms")),
    }
}

/// `256M`, `256MB`, `256MiB`, `1G`, `256` (MiB) → MiB.
pub fn parse_memory_mb(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (number, scale) = if let Some(n) = lower.strip_suffix('g') {
        (n, 1024.0)
    } else if let Some(n) = lower.strip_suffix('m') {
        (n, 1.0)
    } else {
        (lower, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n * scale <= 1e9 => Ok((n * scale).ceil() as u64),
        _ => Err(format!("{s:?} is not a size like 256M or 1G")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn times_and_sizes() {
        assert_eq!(parse_time_ms("2s"), Ok(2000));
        assert_eq!(parse_time_ms("1.5s"), Ok(1500));
        assert_eq!(parse_time_ms("500ms"), Ok(500));
        assert_eq!(parse_time_ms("3"), Ok(3000));
        assert!(parse_time_ms("0").is_err());
        assert!(parse_time_ms("fast").is_err());
        assert_eq!(parse_memory_mb("256M"), Ok(256));
        assert_eq!(parse_memory_mb("256MiB"), Ok(256));
        assert_eq!(parse_memory_mb("1G"), Ok(1024));
        assert_eq!(parse_memory_mb("1gb"), Ok(1024));
        assert_eq!(parse_memory_mb("64"), Ok(64));
        assert!(parse_memory_mb("-1").is_err());
        assert!(parse_memory_mb("lots").is_err());
    }

    #[test]
    fn run_takes_program_arguments_after_the_double_dash() {
        let cli =
            Cli::try_parse_from(["codebox", "run", "a.py", "-t", "2s", "--", "-x", "y"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run");
        };
        assert_eq!(run.args, ["-x", "y"]);
        assert_eq!(run.time_limit, Some(2000));
        assert!(
            Cli::try_parse_from(["codebox", "run", "a.py", "--tests", "d", "--stdin", "f"])
                .is_err()
        );
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("Exit status:") && help.contains("125"),
            "{help}"
        );
    }
}

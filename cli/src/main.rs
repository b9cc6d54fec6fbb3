//! `codebox`, the command-line client of the codebox API: log in, run a program in a
//! sandbox with its output live (or judge it on a folder of test cases), filter an
//! image, list, show and cancel tasks. Every failure is one line on stderr and an exit
//! status of its own (`codebox --help` lists them).

mod api;
mod args;
mod commands;
mod config;
mod fail;
mod follow;
mod lang;
mod net;
mod output;
mod report;
mod testdir;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A bug of ours is still one line, not a dump.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        output::say(format!("codebox: internal error: {what}"));
    }));
    let cli = args::Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let ended = match runtime {
        Ok(runtime) => runtime.block_on(commands::dispatch(cli)),
        Err(e) => Err(fail::Fail::unavailable(format!(
            "cannot start: {}",
            fail::io_reason(&e)
        ))),
    };
    match ended {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            if !failure.message.is_empty() {
                output::say(format!("codebox: {failure}"));
            }
            ExitCode::from(failure.code)
        }
    }
}

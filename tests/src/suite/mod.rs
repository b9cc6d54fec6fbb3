//! The end-to-end suite: each function takes the address of a running stack, so the
//! same tests run against every profile (see `suite!`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use crate::Client;
use serde_json::{Value, json};

mod images;
mod judging;
mod limits;
mod run;
mod sandbox;
mod tasks;

pub use images::*;
pub use judging::*;
pub use limits::*;
pub use run::*;
pub use sandbox::*;
pub use tasks::*;

async fn client(addr: SocketAddr) -> Client {
    Client::new_user(addr).await.unwrap()
}

fn code(language: &str, code: &str) -> Value {
    json!({"language": language, "code": code})
}

/// What a test runs against: something with an address, alive while it is held.
pub trait Stack {
    fn addr(&self) -> SocketAddr;
}

impl Stack for SocketAddr {
    fn addr(&self) -> SocketAddr {
        *self
    }
}

impl Stack for codebox_embedded::Running {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Stack for crate::procs::ProcessStack {
    fn addr(&self) -> SocketAddr {
        self.profile.addr()
    }
}

/// Declares one `#[tokio::test]` per suite function, against the stack `$stack` gives
/// (evaluated inside the test, so it may `.await`; held until the test ends).
#[macro_export]
macro_rules! suite {
    ($stack:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let stack = $stack;
                $crate::suite::$name($crate::suite::Stack::addr(&stack)).await
            }
        )*
    };
}

/// The whole suite, for every profile: `all_tests!(stack)`.
#[macro_export]
macro_rules! all_tests {
    ($stack:expr) => {
        $crate::suite!($stack;
            python_hello,
            c_and_cpp_hello_with_gcc_and_clang,
            stdin_and_args,
            any_bytes_a_program_writes_are_its_result,
            non_zero_exit_is_a_runtime_error,
            a_run_reports_exact_facts,
            deep_recursion_fits_the_default_stack,
            a_compiled_program_must_fit_its_run,
            merged_stderr_keeps_the_order,
            compiler_options_reach_the_compiler,
            a_cpu_limit_counts_work_not_waiting,
            a_program_cannot_forge_the_agents_report,
            a_programs_daemons_die_with_it,
            tasks_never_share_a_network_namespace,
            compile_error_shows_the_compiler_output,
            segfault_reports_the_signal,
            infinite_loop_hits_the_time_limit,
            big_allocation_hits_the_memory_limit,
            output_flood_is_capped,
            network_is_unreachable,
            the_sandbox_is_locked_down,
            only_tmp_is_writable_and_the_user_is_not_root,
            a_task_cannot_take_another_tasks_kernel_quota,
            the_workers_environment_is_not_visible,
            cancel_kills_a_running_task,
            languages_report_real_versions,
            image_filters_on_a_real_png,
            an_uploaded_png_is_filtered,
            non_png_and_oversized_png_are_refused,
            fork_bomb_and_disk_filling_end_with_a_verdict,
            metrics_count_tasks_and_requests,
            judging_reports_each_test,
            files_sit_beside_the_program,
            stop_on_failure_skips_the_rest,
            compare_modes_judge_the_output,
            a_slow_test_hits_the_time_limit_alone,
            sixty_four_tests_of_a_mebibyte_each_commit,
            wait_answers_with_the_finished_task,
            a_batch_takes_each_task_on_its_own,
            events_follow_a_task_to_its_end,
        );
    };
}

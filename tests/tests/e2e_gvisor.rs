//! The whole end-to-end suite with every sandbox on gVisor
//! (`CODEBOX_SANDBOX_RUNTIME=runsc`, registered with the engine by `make test`): a second
//! kernel between a program and the host, and the same verdicts and facts.

codebox_tests::all_tests!(codebox_tests::shared_gvisor_stack());
codebox_tests::suite!(codebox_tests::shared_gvisor_stack();
    gvisor_opens_no_socket_to_the_host,
    a_sandbox_killed_mid_run_ends_its_task_once,
    the_sandbox_is_the_first_the_hosts_kernel_kills,
    hidden_children_count_in_the_facts,
);

/// runsc runs with an environment of the worker's making (`PATH` alone), as runc does:
/// none of the worker's variables reach runsc or what it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_gets_no_variable_of_the_worker() {
    codebox_tests::assert_runtime_gets_no_variable_of_the_worker(
        codebox_tests::shared_gvisor_stack(),
        codebox_worker::sandbox::engine::runc::Runtime::Runsc,
    )
    .await;
}

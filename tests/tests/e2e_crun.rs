//! The whole end-to-end suite with every sandbox run by crun (`CODEBOX_SANDBOX_RUNTIME=
//! crun`, the worker starting it on the sandbox's bundle as it starts runc): the same
//! boundary as runc's, the same verdicts, facts and probes.

codebox_tests::all_tests!(codebox_tests::shared_crun_stack());
codebox_tests::suite!(codebox_tests::shared_crun_stack();
    namespaces_and_keyrings_are_refused,
    io_uring_and_userfaultfd_are_refused,
    the_program_is_the_first_the_kernel_kills,
    the_sandbox_is_the_first_the_hosts_kernel_kills,
    only_local_and_ip_sockets_open,
    hidden_children_count_in_the_facts,
    host_interrupts_and_power_are_masked,
    the_root_is_nosuid_and_nodev,
    a_sandbox_killed_mid_run_ends_its_task_once,
);

/// crun runs with an environment of the worker's making (`PATH` alone), as runc does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_gets_no_variable_of_the_worker() {
    codebox_tests::assert_runtime_gets_no_variable_of_the_worker(
        codebox_tests::shared_crun_stack(),
        codebox_worker::sandbox::engine::runc::Runtime::Crun,
    )
    .await;
}

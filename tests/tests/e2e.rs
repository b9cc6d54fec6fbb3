//! End to end against the embedded stack on 127.0.0.1:0 with runc run by the worker (the
//! default where crun does not run); `e2e_crun.rs` runs the same suite on crun (the
//! default where it runs), `e2e_docker.rs` through the Docker engine, `e2e_gvisor.rs` on
//! gVisor.

codebox_tests::all_tests!(codebox_tests::shared_runc_stack());
// One process: the worker's metrics are on the gateway's /metrics too.
codebox_tests::suite!(codebox_tests::shared_runc_stack();
    metrics_include_the_workers,
    namespaces_and_keyrings_are_refused,
    io_uring_and_userfaultfd_are_refused,
    the_program_is_the_first_the_kernel_kills,
    only_local_and_ip_sockets_open,
    hidden_children_count_in_the_facts,
    host_interrupts_and_power_are_masked,
    the_root_is_nosuid_and_nodev,
    a_sandbox_killed_mid_run_ends_its_task_once,
);

/// runc runs with an environment of the worker's making (`PATH` alone): none of the
/// worker's variables (its credentials among them) reach runc or what runc starts. The
/// warm sandboxes' `runc run` processes are looked at; this test process has many
/// variables (cargo's) that a copied environment would carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runc_gets_no_variable_of_the_worker() {
    codebox_tests::assert_runtime_gets_no_variable_of_the_worker(
        codebox_tests::shared_runc_stack(),
        codebox_worker::sandbox::engine::runc::Runtime::Runc,
    )
    .await;
}

// Fair shares on the memory queue and store, on a stack of its own (see the test).
codebox_tests::suite!(codebox_tests::start_embedded_on(Some(codebox_tests::RUNC_ENGINE)).await;
    a_users_backlog_does_not_hold_another_users_task,
);

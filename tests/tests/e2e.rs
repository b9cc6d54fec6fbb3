//! End to end against the embedded stack on 127.0.0.1:0 with the runc engine (the default
//! wherever the worker can run runc itself); `e2e_docker.rs` runs the same suite through
//! the Docker engine, `e2e_gvisor.rs` on gVisor.

codebox_tests::all_tests!(codebox_tests::shared_runc_stack());
// One process: the worker's metrics are on the gateway's /metrics too.
codebox_tests::suite!(codebox_tests::shared_runc_stack();
    metrics_include_the_workers,
    namespaces_and_keyrings_are_refused,
    io_uring_and_userfaultfd_are_refused,
    the_program_is_the_first_the_kernel_kills,
    only_local_and_ip_sockets_open,
    hidden_children_count_in_the_facts,
);

//! The whole end-to-end suite with every sandbox run by the Docker engine
//! (`CODEBOX_SANDBOX_ENGINE=docker`, as in the compose profile and on AWS, where the worker
//! is a container and reaches the engine through its socket).

codebox_tests::all_tests!(codebox_tests::shared_docker_stack());
codebox_tests::suite!(codebox_tests::shared_docker_stack();
    metrics_include_the_workers,
    namespaces_and_keyrings_are_refused,
    io_uring_and_userfaultfd_are_refused,
    the_program_is_the_first_the_kernel_kills,
    only_local_and_ip_sockets_open,
    hidden_children_count_in_the_facts,
    host_interrupts_and_power_are_masked,
    a_sandbox_killed_mid_run_ends_its_task_once,
);

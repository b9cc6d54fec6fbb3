//! gVisor through the Docker engine (`CODEBOX_SANDBOX_ENGINE=docker` with the runtime
//! `runsc`): the fallback where the worker cannot run runsc itself (a worker in a
//! container, the compose profile). The sandbox's protections, limits and facts, probed
//! as on every engine; `e2e_gvisor.rs` runs the whole suite on runsc run by the worker.

codebox_tests::suite!(codebox_tests::shared_gvisor_docker_stack();
    python_hello,
    c_and_cpp_hello_with_gcc_and_clang,
    a_run_reports_exact_facts,
    hidden_children_count_in_the_facts,
    a_cpu_limit_counts_work_not_waiting,
    a_programs_daemons_die_with_it,
    infinite_loop_hits_the_time_limit,
    big_allocation_hits_the_memory_limit,
    output_flood_is_capped,
    network_is_unreachable,
    gvisor_opens_no_socket_to_the_host,
    the_sandbox_is_locked_down,
    only_tmp_is_writable_and_the_user_is_not_root,
    a_task_cannot_take_another_tasks_kernel_quota,
    the_workers_environment_is_not_visible,
    cancel_kills_a_running_task,
    fork_bomb_and_disk_filling_end_with_a_verdict,
    a_sandbox_killed_mid_run_ends_its_task_once,
    the_sandbox_is_the_first_the_hosts_kernel_kills,
    deep_recursion_fits_the_default_stack,
    a_compiled_program_must_fit_its_run,
);

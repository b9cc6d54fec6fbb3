//! The same end-to-end suite against the compose profile as host processes: the gateway
//! and worker binaries on PostgreSQL, Redis, RabbitMQ and a blob directory, the worker
//! committing over HTTP with its credential (services from `scripts/services.sh up`).

codebox_tests::suite!(codebox_tests::procs::ProcessStack::start().await;
    python_hello,
    c_and_cpp_hello_with_gcc_and_clang,
    stdin_and_args,
    non_zero_exit_is_a_runtime_error,
    compile_error_shows_the_compiler_output,
    segfault_reports_the_signal,
    infinite_loop_hits_the_time_limit,
    big_allocation_hits_the_memory_limit,
    output_flood_is_capped,
    network_is_unreachable,
    only_tmp_is_writable_and_the_user_is_not_root,
    the_workers_environment_is_not_visible,
    cancel_kills_a_running_task,
    languages_report_real_versions,
    image_filters_on_a_real_png,
    non_png_and_oversized_png_are_refused,
    fork_bomb_and_disk_filling_end_with_a_verdict,
    metrics_count_tasks_and_requests,
);

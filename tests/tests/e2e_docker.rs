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

/// A runtime the Docker engine does not have is refused when the worker starts, naming
/// the runtimes it has (before, Docker refused each sandbox, the first at the first task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_docker_lacks_stops_the_worker_at_start() {
    use codebox_worker::sandbox::{EngineKind, SandboxConfig, Sandboxes};
    for engine in [EngineKind::Docker, EngineKind::Auto] {
        let config = SandboxConfig {
            engine,
            runtime: Some("no-such-runtime".to_owned()),
            ..SandboxConfig::default()
        };
        let Err(e) = Sandboxes::connect(config).await else {
            panic!("{engine:?}: a worker started on a runtime Docker lacks");
        };
        let e = format!("{e:#}");
        assert!(
            e.contains("the Docker engine has no runtime no-such-runtime (it has ")
                && e.contains("runc"),
            "{engine:?}: {e}"
        );
    }
}

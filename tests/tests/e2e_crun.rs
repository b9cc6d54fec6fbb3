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

/// With no engine or runtime named, the worker runs crun wherever crun runs (as here,
/// after `make crun`): the same boundary as runc's, a sandbox started in half the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_is_the_default_where_it_runs() {
    use codebox_worker::sandbox::{SandboxConfig, Sandboxes};
    let sandboxes = Sandboxes::connect(SandboxConfig::default())
        .await
        .expect("the default engine opens");
    assert_eq!(sandboxes.engine(), "crun");
}

/// Where crun does not run (missing here, told to be another path), the default is runc,
/// not Docker and not a worker that stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_falls_back_to_runc_where_crun_does_not_run() {
    use codebox_worker::sandbox::{SandboxConfig, Sandboxes};
    let config = SandboxConfig {
        crun: "/nonexistent/crun".to_owned(),
        ..SandboxConfig::default()
    };
    let sandboxes = Sandboxes::connect(config)
        .await
        .expect("the default engine opens");
    assert_eq!(sandboxes.engine(), "runc");
}

/// crun named but not runnable is refused at start with the reason, never another runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_named_and_missing_stops_the_worker_with_the_reason() {
    use codebox_worker::sandbox::{EngineKind, SandboxConfig, Sandboxes};
    let config = SandboxConfig {
        engine: EngineKind::Runc,
        runtime: Some("crun".to_owned()),
        crun: "/nonexistent/crun".to_owned(),
        ..SandboxConfig::default()
    };
    let Err(e) = Sandboxes::connect(config).await else {
        panic!("a worker told to run a missing crun started");
    };
    let e = format!("{e:#}");
    assert!(e.contains("crun (/nonexistent/crun) does not run"), "{e}");
}

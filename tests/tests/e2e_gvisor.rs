//! The whole end-to-end suite with every sandbox on gVisor
//! (`CODEBOX_SANDBOX_RUNTIME=runsc`, registered with the engine by `make test`): a second
//! kernel between a program and the host, and the same verdicts and facts.

codebox_tests::all_tests!(codebox_tests::shared_gvisor_stack());
codebox_tests::suite!(codebox_tests::shared_gvisor_stack();
    gvisor_opens_no_socket_to_the_host,
);

/// runsc runs with an environment of the worker's making (`PATH` alone), as runc does:
/// none of the worker's variables reach runsc or what it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_gets_no_variable_of_the_worker() {
    use codebox_worker::sandbox::engine::runc::{Runtime, state_root};
    let addr = codebox_tests::shared_gvisor_stack();
    codebox_tests::Client::new_user(addr)
        .await
        .unwrap()
        .run(serde_json::json!({"language": "python", "code": "print(1)"}))
        .await
        .unwrap();
    let root = state_root(Runtime::Runsc).to_string_lossy().into_owned();
    // The suite's other tests share the stack and take warm sandboxes as they run: look
    // until some `runsc run` is there (the pool refills within moments), bounded.
    let mut environments = Vec::new();
    for _ in 0..100 {
        environments = codebox_tests::runtime_environments("runsc", &root);
        if !environments.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !environments.is_empty(),
        "no runsc run of this stack was found"
    );
    for names in environments {
        assert_eq!(names, ["PATH"], "runsc's environment: {names:?}");
    }
}

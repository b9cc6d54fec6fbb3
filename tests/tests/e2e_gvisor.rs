//! The whole end-to-end suite with every sandbox on gVisor
//! (`CODEBOX_SANDBOX_RUNTIME=runsc`, registered with the engine by `make test`): a second
//! kernel between a program and the host, and the same verdicts and facts.

codebox_tests::all_tests!(codebox_tests::shared_gvisor_stack());
codebox_tests::suite!(codebox_tests::shared_gvisor_stack();
    gvisor_opens_no_socket_to_the_host,
);

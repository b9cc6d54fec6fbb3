//! End to end against the embedded stack on 127.0.0.1:0 with the real Docker sandbox.

codebox_tests::all_tests!(codebox_tests::shared_stack());
// One process: the worker's metrics are on the gateway's /metrics too.
codebox_tests::suite!(codebox_tests::shared_stack(); metrics_include_the_workers);

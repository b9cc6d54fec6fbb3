//! The same end-to-end suite against the compose profile as host processes: the gateway
//! and worker binaries on PostgreSQL, Redis, RabbitMQ and a blob directory, the worker
//! committing over HTTP with its credential (services from `scripts/services.sh up`).

codebox_tests::all_tests!(codebox_tests::procs::ProcessStack::start().await);
codebox_tests::suite!(codebox_tests::procs::ProcessStack::start().await;
    a_users_backlog_does_not_hold_another_users_task,
);

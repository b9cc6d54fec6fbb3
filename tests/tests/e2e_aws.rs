//! The same end-to-end suite against the AWS profile as host processes: the gateway on
//! DynamoDB + S3 with its secrets read from Secrets Manager, the worker consuming SQS
//! (visibility extended while tasks run, dead letters ended `failed`) — all on moto's
//! server, provisioned by the LocalStack init hook (`localstack/init/ready.d`).

codebox_tests::all_tests!(codebox_tests::procs::ProcessStack::start_aws().await);
codebox_tests::suite!(codebox_tests::procs::ProcessStack::start_aws().await;
    a_users_backlog_does_not_hold_another_users_task,
);

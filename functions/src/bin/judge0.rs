//! Lambda function `judge0`: the Judge0-compatible API.

codebox_functions::lambda_main!(judge0, queues);

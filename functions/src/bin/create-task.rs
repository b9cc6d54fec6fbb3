//! Lambda function `create-task`.

codebox_functions::lambda_main!(create_task, queues);

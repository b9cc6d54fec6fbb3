//! Lambda function `cancel-task`.

codebox_functions::lambda_main!(cancel_task);

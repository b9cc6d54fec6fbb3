//! Lambda function `get-task`.

codebox_functions::lambda_main!(get_task);

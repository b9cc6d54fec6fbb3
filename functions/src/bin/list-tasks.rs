//! Lambda function `list-tasks`.

codebox_functions::lambda_main!(list_tasks);

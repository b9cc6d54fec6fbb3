//! Lambda function `get-status`.

codebox_functions::lambda_main!(get_status);

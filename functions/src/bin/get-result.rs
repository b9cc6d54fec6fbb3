//! Lambda function `get-result`.

codebox_functions::lambda_main!(get_result);

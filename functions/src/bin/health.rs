//! Lambda function `health`.

codebox_functions::lambda_main!(health);

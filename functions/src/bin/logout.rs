//! Lambda function `logout`.

codebox_functions::lambda_main!(logout);

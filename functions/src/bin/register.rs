//! Lambda function `register`.

codebox_functions::lambda_main!(register);

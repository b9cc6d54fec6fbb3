//! Lambda function `login`.

codebox_functions::lambda_main!(login);

//! Lambda function `languages`.

codebox_functions::lambda_main!(languages);

//! Lambda function `commit`.

codebox_functions::lambda_main!(commit, workers);

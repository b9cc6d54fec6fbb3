//! Lambda function `webhook-key`.

codebox_functions::lambda_main!(webhook_key);

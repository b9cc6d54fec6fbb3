//! Secrets Manager: the API reads its JWT key and the worker credential by ARN once, at
//! start (a Lambda's init), so they never sit in environment variables.

use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;

/// The secret's string value.
pub async fn secret_string(sdk: &aws_config::SdkConfig, arn: &str) -> anyhow::Result<SecretString> {
    let client = Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read secret {arn}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })?;
    out.secret_string()
        .map(|s| SecretString::from(s.to_owned()))
        .ok_or_else(|| anyhow::anyhow!("secret {arn} has no string value"))
}

//! The rate limiter's counters.

use super::codec::*;
use super::*;

/// DynamoDB: the rate limiter's fixed-window counters, one item per key and window
/// (`ADD count :1` in one `UpdateItem`, so concurrent hits from every Lambda instance are
/// all counted), removed by TTL after the window.
#[derive(Clone)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

impl DynamoRateLimiter {
    /// The table (`LIMITS_TABLE`): key `key` (S), TTL attribute `expires_at_epoch`.
    pub fn new(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self {
            client: Client::new(sdk),
            table,
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<RateDecision, Error> {
        let now = time::now();
        let (index, left) = window_of(now.timestamp_millis(), window);
        let expires = now.timestamp() + i64::try_from(window.as_secs()).unwrap_or(0) * 2 + 1;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key", s(format!("{key}:{index}")))
            .update_expression(
                "ADD #c :one SET expires_at_epoch = if_not_exists(expires_at_epoch, :exp)",
            )
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let count = out
            .attributes()
            .and_then(|a| opt_n(a, "count").ok().flatten())
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(u64::MAX);
        Ok(RateDecision::of(count, limit, left))
    }
}

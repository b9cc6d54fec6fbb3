//! A task, a user or a number as a DynamoDB item holds it.

use super::*;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, Error> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::Backend(anyhow::anyhow!(
            "item attribute {name} is missing or not a string"
        ))),
    }
}

pub(super) fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub(super) fn opt_n(item: &Item, name: &str) -> Result<Option<i64>, Error> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            Error::Backend(anyhow::anyhow!("item attribute {name} is not an integer"))
        }),
        _ => Ok(None),
    }
}

pub(super) fn ms(ts: &Timestamp) -> i64 {
    ts.timestamp_millis()
}

pub(super) fn from_ms(v: i64) -> Result<Timestamp, Error> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| Error::Backend(anyhow::anyhow!("timestamp {v} out of range")))
}

pub(super) fn uuid_of(item: &Item, name: &str) -> Result<uuid::Uuid, Error> {
    get_s(item, name)?
        .parse()
        .map_err(|_| Error::Backend(anyhow::anyhow!("item attribute {name} is not a uuid")))
}

/// The GSI sort key: fixed-width milliseconds, then the id, so that string order is
/// (created_at, id) order.
pub(super) fn list_key(created_ms: i64, id: TaskId) -> String {
    format!("{:015}#{id}", created_ms.max(0))
}

pub(super) fn summary_of(item: &Item) -> Result<TaskSummary, Error> {
    let status = get_s(item, "status")?;
    let kind = match get_s(item, "kind")? {
        "code" => TaskKind::Code,
        "image" => TaskKind::Image,
        other => return Err(Error::Backend(anyhow::anyhow!("unknown kind {other:?}"))),
    };
    let created_ms = opt_n(item, "created_at_ms")?
        .ok_or_else(|| Error::Backend(anyhow::anyhow!("a task item has no created_at_ms")))?;
    Ok(TaskSummary {
        id: uuid_of(item, "id")?,
        owner: uuid_of(item, "owner")?,
        kind,
        status: TaskStatus::parse(status)
            .ok_or_else(|| Error::Backend(anyhow::anyhow!("unknown status {status:?}")))?,
        created_at: from_ms(created_ms)?,
        started_at: opt_n(item, "started_at_ms")?.map(from_ms).transpose()?,
        finished_at: opt_n(item, "finished_at_ms")?.map(from_ms).transpose()?,
    })
}

/// Whether a task item is past its retention (TTL deletion is lazy: it may still be read).
pub(super) fn expired(item: &Item) -> bool {
    matches!(opt_n(item, "expires_at_epoch"), Ok(Some(at)) if at <= Utc::now().timestamp())
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Backend(e.into()))
}

pub(super) fn user_of(item: &Item) -> Result<User, Error> {
    Ok(User {
        id: uuid_of(item, "id")?,
        username: get_s(item, "username")?.to_owned(),
        password_hash: get_s(item, "password_hash")?.to_owned(),
        created_at: from_ms(opt_n(item, "created_at_ms")?.unwrap_or(0))?,
    })
}

//! Users: the username is the key, so a conditional put makes it unique; a GSI finds
//! them by id.

use super::codec::*;
use super::*;

#[async_trait]
impl UserStore for DynamoStore {
    async fn create(&self, user: &User) -> Result<(), Error> {
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.users)
            .item("username", s(&user.username))
            .item("id", s(user.id.to_string()))
            .item("password_hash", s(&user.password_hash))
            .item("created_at_ms", n(ms(&user.created_at)))
            .condition_expression("attribute_not_exists(username)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "username {:?} is taken",
                    user.username
                )))
            }
            Err(e) => Err(sdk_error(WHAT, e)),
        }
    }

    async fn get_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        self.item(&self.tables.users, "username", username)
            .await?
            .as_ref()
            .map(user_of)
            .transpose()
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.users)
            .index_name(USERS_BY_ID)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", s(id.to_string()))
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        out.items().first().map(user_of).transpose()
    }
}

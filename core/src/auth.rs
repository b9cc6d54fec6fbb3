//! Accounts: registration with bcrypt, login issuing HS256 JWTs backed by a server-side
//! session (so logout revokes at once), and token checks for users and the worker.

use std::sync::Arc;

use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Session, User, UserId};
use crate::error::{Error, Result};
use crate::ports::{SessionStore, UserStore};
use crate::time::{self, Timestamp};

pub const USERNAME_CHARS: &str = "3–64 characters of A–Z, a–z, 0–9, '_', '.', '-'";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// The claims of an upload grant ([`AccountService::grant_upload`]): no `jti`, so it is
/// never a session token, and an audience of its own, so a session token is never one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadClaims {
    aud: String,
    exp: i64,
    /// The blob key the upload goes to.
    key: String,
    /// Its exact length in bytes.
    len: u64,
}

const UPLOAD_AUDIENCE: &str = "codebox-upload";

/// What an upload grant allows: `len` bytes at `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    pub key: String,
    pub len: u64,
}

/// Who is calling, once a bearer token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub jti: String,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Clone)]
pub struct AccountConfig {
    pub jwt_secret: SecretString,
    pub token_ttl: Duration,
    pub bcrypt_cost: u32,
    pub worker_token: SecretString,
}

#[derive(Clone)]
pub struct AccountService {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    token_ttl: Duration,
    bcrypt_cost: u32,
    worker_token: SecretString,
    /// Verified against when the username is unknown, so both failures take as long.
    dummy_hash: Arc<str>,
}

impl AccountService {
    pub fn new(
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        config: AccountConfig,
    ) -> Result<Self> {
        let secret = config.jwt_secret.expose_secret().as_bytes();
        if secret.len() < 32 {
            return Err(Error::Invalid(
                "the JWT secret must be at least 32 bytes".into(),
            ));
        }
        if !(4..=31).contains(&config.bcrypt_cost) {
            return Err(Error::Invalid("the bcrypt cost must be 4 to 31".into()));
        }
        // A well-formed hash of the configured cost that matches no password: verifying
        // against it costs what a real check costs, and building it costs nothing at start
        // (hashing here would add the full bcrypt time to every Lambda cold start).
        let cheap = bcrypt::hash("not a password of anyone", 4)
            .map_err(|e| Error::Invalid(format!("bcrypt: {e}")))?;
        let dummy_hash = format!("$2b${:02}${}", config.bcrypt_cost, &cheap[7..]);
        Ok(Self {
            users,
            sessions,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            token_ttl: config.token_ttl,
            bcrypt_cost: config.bcrypt_cost,
            worker_token: config.worker_token,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn register(&self, username: &str, password: &str) -> Result<User> {
        validate_username(username)?;
        validate_password(password)?;
        let cost = self.bcrypt_cost;
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(bcrypt_input(&password), cost))
            .await
            .map_err(|e| anyhow::anyhow!("bcrypt task: {e}"))?
            .map_err(|e| anyhow::anyhow!("bcrypt: {e}"))?;
        let user = User {
            id: Uuid::new_v4(),
            username: username.to_owned(),
            password_hash: hash,
            created_at: time::now(),
        };
        self.users.create(&user).await?;
        Ok(user)
    }

    /// The same `Unauthorized` for an unknown user and a wrong password.
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken> {
        let user = self.users.get_by_username(username).await?;
        let hash: Arc<str> = match &user {
            Some(u) => u.password_hash.as_str().into(),
            None => self.dummy_hash.clone(),
        };
        let password = password.to_owned();
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(bcrypt_input(&password), &hash))
                .await
                .map_err(|e| anyhow::anyhow!("bcrypt task: {e}"))?
                .unwrap_or(false);
        let user = match user {
            Some(u) if matches => u,
            _ => return Err(Error::Unauthorized("wrong username or password".into())),
        };
        self.issue(user.id).await
    }

    async fn issue(&self, user_id: UserId) -> Result<IssuedToken> {
        let now = time::now();
        let expires_at = now + self.token_ttl;
        let jti = Uuid::new_v4().to_string();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: jti.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| anyhow::anyhow!("signing a token: {e}"))?;
        self.sessions
            .put(&Session {
                jti,
                user_id,
                expires_at,
            })
            .await?;
        Ok(IssuedToken {
            token,
            expires_in: self.token_ttl.num_seconds(),
        })
    }

    /// Checks signature, expiry and that the session still exists.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let unauthorized = || Error::Unauthorized("invalid or expired token".into());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iat", "jti"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| unauthorized())?;
        let user_id: UserId = data.claims.sub.parse().map_err(|_| unauthorized())?;
        match self.sessions.get(&data.claims.jti).await? {
            Some(s) if s.user_id == user_id && s.expires_at > time::now() => Ok(Principal {
                user_id,
                jti: data.claims.jti,
            }),
            _ => Err(unauthorized()),
        }
    }

    /// Readiness: the session store answers (every authenticated request needs it).
    pub async fn ping(&self) -> Result<()> {
        self.sessions.ping().await
    }

    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        self.sessions.revoke(&principal.jti).await
    }

    /// A signed grant to upload exactly `len` bytes at `key` until `expires_at`: the
    /// capability in an upload URL the API serves itself (where the blob store has no
    /// presigned URLs).
    pub fn grant_upload(&self, key: &str, len: u64, expires_at: Timestamp) -> Result<String> {
        let claims = UploadClaims {
            aud: UPLOAD_AUDIENCE.to_owned(),
            exp: expires_at.timestamp(),
            key: key.to_owned(),
            len,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Backend(anyhow::anyhow!("signing an upload grant: {e}")))
    }

    /// The grant `token` carries, if this deployment signed it and it has not expired.
    ///
    /// # Errors
    /// `Forbidden` for anything else.
    pub fn check_upload(&self, token: &str) -> Result<UploadGrant> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[UPLOAD_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        let data = jsonwebtoken::decode::<UploadClaims>(token, &self.decoding, &validation)
            .map_err(|_| Error::Forbidden("the upload URL is not valid, or has expired".into()))?;
        Ok(UploadGrant {
            key: data.claims.key,
            len: data.claims.len,
        })
    }

    /// Whether the bearer token is the worker credential (compared in constant time).
    pub fn is_worker_token(&self, token: &str) -> bool {
        constant_time_eq(
            token.as_bytes(),
            self.worker_token.expose_secret().as_bytes(),
        )
    }

    pub fn session_expiry(&self) -> Timestamp {
        time::now() + self.token_ttl
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn validate_username(username: &str) -> Result<()> {
    let ok_len = (3..=64).contains(&username.chars().count());
    let ok_chars = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(Error::Invalid(format!("username must be {USERNAME_CHARS}")))
    }
}

pub fn validate_password(password: &str) -> Result<()> {
    if (8..=72).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "password must be 8 to 72 characters long".into(),
        ))
    }
}

/// What bcrypt hashes: the password itself when bcrypt takes it whole (at most 72 bytes,
/// no NUL — so every hash made before still verifies), else the base64 of its SHA-256:
/// no character of a long UTF-8 password is silently cut off.
fn bcrypt_input(password: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    if password.len() <= 72 && !password.contains('\0') {
        password.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(password.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemorySessionStore, MemoryUserStore};

    /// 72 characters of 4-byte UTF-8 are a password like any other: the whole of it
    /// counts, so one differing in its last character does not log in.
    #[tokio::test]
    async fn long_utf8_and_nul_passwords_count_whole() {
        let s = service(Duration::hours(1));
        let long = "🔑".repeat(71) + "a";
        let other = "🔑".repeat(71) + "b";
        s.register("emoji", &long).await.unwrap();
        s.login("emoji", &long).await.unwrap();
        assert!(matches!(
            s.login("emoji", &other).await,
            Err(Error::Unauthorized(_))
        ));
        s.register("nul", "pass\0word").await.unwrap();
        s.login("nul", "pass\0word").await.unwrap();
        assert!(s.login("nul", "pass\0wore").await.is_err());
        assert!(s.register("long", &"x".repeat(73)).await.is_err());
    }

    fn service(ttl: Duration) -> AccountService {
        AccountService::new(
            Arc::new(MemoryUserStore::default()),
            Arc::new(MemorySessionStore::default()),
            AccountConfig {
                jwt_secret: SecretString::from("0123456789abcdef0123456789abcdef"),
                token_ttl: ttl,
                bcrypt_cost: 4,
                worker_token: SecretString::from("worker-secret"),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn register_login_authenticate_logout() {
        let s = service(Duration::hours(1));
        let user = s.register("alice", "password1").await.unwrap();
        assert!(user.password_hash.starts_with("$2"));
        let t = s.login("alice", "password1").await.unwrap();
        let p = s.authenticate(&t.token).await.unwrap();
        assert_eq!(p.user_id, user.id);
        s.logout(&p).await.unwrap();
        assert!(matches!(
            s.authenticate(&t.token).await,
            Err(Error::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_look_the_same() {
        let s = service(Duration::hours(1));
        s.register("bob", "password1").await.unwrap();
        let a = s.login("bob", "wrongpass").await.unwrap_err().to_string();
        let b = s
            .login("nobody", "password1")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn expired_and_forged_tokens_are_refused() {
        let s = service(Duration::seconds(-5));
        s.register("carol", "password1").await.unwrap();
        let t = s.login("carol", "password1").await.unwrap();
        assert!(s.authenticate(&t.token).await.is_err());

        let other = service(Duration::hours(1));
        other.register("carol", "password1").await.unwrap();
        let t = other.login("carol", "password1").await.unwrap();
        let mut forged = t.token.clone();
        forged.pop();
        forged.push('x');
        assert!(other.authenticate(&forged).await.is_err());
        assert!(other.authenticate("not.a.jwt").await.is_err());
    }

    /// An upload grant works until it expires, only where it was signed, and is never
    /// taken for a session token, nor a session token for a grant.
    #[tokio::test]
    async fn upload_grants_are_their_own_kind_of_token() {
        let s = service(Duration::hours(1));
        let soon = time::now() + Duration::minutes(5);
        let grant = s.grant_upload("uploads/u/x.png", 42, soon).unwrap();
        assert_eq!(
            s.check_upload(&grant).unwrap(),
            UploadGrant {
                key: "uploads/u/x.png".into(),
                len: 42
            }
        );
        assert!(matches!(
            s.authenticate(&grant).await,
            Err(Error::Unauthorized(_))
        ));
        let past = s
            .grant_upload("uploads/u/x.png", 42, time::now() - Duration::seconds(1))
            .unwrap();
        assert!(matches!(s.check_upload(&past), Err(Error::Forbidden(_))));
        let elsewhere = AccountService::new(
            Arc::new(MemoryUserStore::default()),
            Arc::new(MemorySessionStore::default()),
            AccountConfig {
                jwt_secret: SecretString::from("another secret of at least 32 bytes"),
                token_ttl: Duration::hours(1),
                bcrypt_cost: 4,
                worker_token: SecretString::from("worker-secret"),
            },
        )
        .unwrap();
        assert!(elsewhere.check_upload(&grant).is_err());
        s.register("dave", "password1").await.unwrap();
        let session = s.login("dave", "password1").await.unwrap();
        assert!(matches!(
            s.check_upload(&session.token),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn username_and_password_rules() {
        assert!(validate_username("ab").is_err());
        assert!(validate_username("a b c").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
        assert!(validate_username("a.b_c-9").is_ok());
        assert!(validate_password("short").is_err());
        assert!(validate_password(&"x".repeat(73)).is_err());
        assert!(validate_password(&"x".repeat(72)).is_ok());
    }

    #[tokio::test]
    async fn unknown_users_pay_the_configured_bcrypt_cost() {
        let s = service(Duration::hours(1));
        assert!(bcrypt::verify("password1", &s.dummy_hash).is_ok_and(|m| !m));
        assert!(s.dummy_hash.starts_with("$2b$04$"));
    }

    #[test]
    fn worker_token_compare() {
        let s = service(Duration::hours(1));
        assert!(s.is_worker_token("worker-secret"));
        assert!(!s.is_worker_token("worker-secreT"));
        assert!(!s.is_worker_token(""));
    }
}

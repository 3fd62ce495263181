//! Device tokens as the engine expects them: HS256 JWTs signed with the deployment's
//! `JWT_SECRET`, naming the device's branch and role (and a kitchen screen's station).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use jsonwebtoken::{EncodingKey, Header};
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;

use crate::proto::Topic;

/// How the load test signs its devices' tokens.
#[derive(Clone, clap::Args)]
pub struct AuthArgs {
    /// The key tokens are signed with (the server's JWT_SECRET). Required with a --server URL;
    /// a spawned server is given this one, or a random one when none is given.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The tokens' `iss` (the server's jwt_issuer).
    #[arg(long, default_value = "rail")]
    pub jwt_issuer: String,
    /// The tokens' `aud` (the server's jwt_audience).
    #[arg(long, default_value = "rail")]
    pub jwt_audience: String,
}

// The secret stays out of logs and reports.
impl std::fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthArgs")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<hidden>"))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .finish()
    }
}

impl AuthArgs {
    /// The secret to sign with: the one given, else (for a server spawned here) a random one.
    pub fn secret(&self, spawned: bool) -> anyhow::Result<String> {
        match &self.jwt_secret {
            Some(secret) => Ok(secret.clone()),
            None if spawned => Ok(Alphanumeric.sample_string(&mut rand::rng(), 48)),
            None => bail!(
                "an external --server needs the secret its tokens are signed with: pass --jwt-secret or set JWT_SECRET"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    Manager,
    Waiter,
    Kitchen,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    branch: &'a str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    station: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// Mints the devices' tokens, all valid from now until an hour after the run should end.
pub struct Tokens {
    key: EncodingKey,
    issuer: String,
    audience: String,
    now: u64,
    exp: u64,
}

impl Tokens {
    /// Tokens for a run expected to last `run`.
    pub fn new(args: &AuthArgs, secret: &str, run: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            issuer: args.jwt_issuer.clone(),
            audience: args.jwt_audience.clone(),
            now,
            exp: now + run.as_secs() + 3600,
        }
    }

    fn mint(&self, branch: &str, role: Role, device: &str, station: Option<&str>) -> String {
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: device,
            branch,
            role,
            station,
            iat: self.now,
            nbf: self.now,
            exp: self.exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.key)
            .expect("an HMAC key signs any claims")
    }

    /// The branch manager's: configures the branch.
    pub fn manager(&self, branch: &str) -> String {
        self.mint(
            branch,
            Role::Manager,
            &format!("loadtest-{branch}-manager"),
            None,
        )
    }

    /// A waiter's: opens, fires, serves and closes orders.
    pub fn waiter(&self, branch: &str) -> String {
        self.mint(
            branch,
            Role::Waiter,
            &format!("loadtest-{branch}-waiter"),
            None,
        )
    }

    /// The `n`th socket's: a kitchen screen of its station, or a waiter's tablet at its table.
    pub fn socket(&self, branch: &str, topic: &Topic, n: usize) -> String {
        match topic {
            Topic::Station(station) => self.mint(
                branch,
                Role::Kitchen,
                &format!("loadtest-{branch}-{station}-screen-{n}"),
                Some(station),
            ),
            Topic::Table(table) => self.mint(
                branch,
                Role::Waiter,
                &format!("loadtest-{branch}-{table}-tablet-{n}"),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn mints_tokens_of_the_contract() {
        let args = AuthArgs {
            jwt_secret: None,
            jwt_issuer: "rail".into(),
            jwt_audience: "rail".into(),
        };
        let secret = args.secret(true).unwrap();
        assert_eq!(secret.len(), 48);
        assert!(args.secret(false).is_err());
        let tokens = Tokens::new(&args, &secret, Duration::from_secs(30));
        let token = tokens.socket("load-1", &Topic::Station("expo".into()), 3);
        let mut validation = Validation::default();
        validation.set_issuer(&["rail"]);
        validation.set_audience(&["rail"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["role"], "kitchen");
        assert_eq!(claims["station"], "expo");
        assert_eq!(claims["branch"], "load-1");
        assert!(claims["exp"].as_u64().unwrap() >= claims["iat"].as_u64().unwrap() + 3630);
        let waiter = jsonwebtoken::decode::<serde_json::Value>(
            &tokens.waiter("load-2"),
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(waiter["role"], "waiter");
        assert!(waiter.get("station").is_none());
    }
}

//! Client authentication on the wire: the method a rule of [`AuthConfig`] picks for the
//! client's address and role, run by pgwire's [`AuthDriver`] — trust, SCRAM-SHA-256, MD5 or a
//! cleartext password — against the roles and passwords of the configuration.
//!
//! Passwords are kept as SCRAM verifiers (derived once at startup from a cleartext password,
//! with a random salt and 4096 iterations, or given as PostgreSQL's verifier string), so the
//! SCRAM exchange never needs the password itself; MD5 and cleartext need the cleartext
//! password, and MD5 falls back to SCRAM for a role that has only a verifier, as PostgreSQL does.

use crate::sql::roles::Roles;
use async_trait::async_trait;
use base64::Engine as _;
use pgwire::api::auth::cleartext::CleartextPasswordAuth;
use pgwire::api::auth::md5pass::{hash_md5_password, Md5PasswordAuth};
use pgwire::api::auth::mechanism::{AuthMechanism, AuthMechanismFactory, AuthState};
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth, ScramSecret};
use pgwire::api::auth::sasl::SaslMechanisms;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::PasswordMessageFamily;
use rxc_common::auth::{AuthConfig, AuthMethod};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// SCRAM iterations for verifiers derived from cleartext passwords (PostgreSQL's default).
const SCRAM_ITERATIONS: usize = 4096;

/// A SCRAM-SHA-256 verifier, as PostgreSQL stores one.
#[derive(Clone)]
struct Verifier {
    salt: Vec<u8>,
    iterations: usize,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Verifier {
    fn from_salted_password(salt: Vec<u8>, salted_password: Vec<u8>) -> Verifier {
        match ScramSecret::verifier_from_salted_password(salt, salted_password, SCRAM_ITERATIONS) {
            ScramSecret::Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            } => Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            },
            ScramSecret::SaltedPassword { .. } => unreachable!("pgwire derives a verifier"),
        }
    }

    fn secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }
}

/// A role's stored password.
#[derive(Clone)]
struct Secret {
    cleartext: Option<String>,
    verifier: Verifier,
}

/// The roles and passwords, ready for the mechanisms: the node's roles (their SCRAM
/// verifiers), and the passwords of the `[auth]` configuration for roles that have none
/// stored.
pub struct Credentials {
    config: AuthConfig,
    secrets: HashMap<String, Secret>,
    roles: Arc<Roles>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("roles", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Parses PostgreSQL's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
fn parse_verifier(text: &str) -> Option<Verifier> {
    let rest = text.strip_prefix("SCRAM-SHA-256$")?;
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored, server) = keys.split_once(':')?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Some(Verifier {
        salt: b64.decode(salt).ok()?,
        iterations: iterations.parse().ok()?,
        stored_key: b64.decode(stored).ok()?,
        server_key: b64.decode(server).ok()?,
    })
}

/// The SCRAM-SHA-256 verifier of `password` with a fresh salt, in PostgreSQL's text form.
pub fn scram_verifier(password: &str) -> String {
    let salt = random_bytes(16);
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    let v = Verifier::from_salted_password(salt, salted);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${}:{}${}:{}",
        v.iterations,
        b64.encode(&v.salt),
        b64.encode(&v.stored_key),
        b64.encode(&v.server_key)
    )
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    // The OS random source does not fail on Linux; if it did, the salt would still be unique
    // enough per node for a verifier, never a secret.
    let _ = getrandom::fill(&mut out);
    out
}

impl Credentials {
    /// Derives the verifiers of the configured roles; the node's `roles` are read as they
    /// are at each login. Fails on a malformed verifier string.
    pub fn new(config: AuthConfig, roles: Arc<Roles>) -> Result<Credentials, String> {
        config.validate()?;
        let mut secrets = HashMap::new();
        for user in &config.users {
            let Some(password) = &user.password else {
                continue;
            };
            let secret = if password.starts_with("SCRAM-SHA-256$") {
                let verifier = parse_verifier(password).ok_or_else(|| {
                    format!("auth.users: malformed SCRAM verifier for \"{}\"", user.name)
                })?;
                Secret {
                    cleartext: None,
                    verifier,
                }
            } else {
                let salt = random_bytes(16);
                let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
                Secret {
                    cleartext: Some(password.clone()),
                    verifier: Verifier::from_salted_password(salt, salted),
                }
            };
            secrets.insert(user.name.clone(), secret);
        }
        Ok(Credentials {
            config,
            secrets,
            roles,
        })
    }

    /// The rules and roles.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Whether a role called `name` exists, and whether it may log in.
    pub fn role(&self, name: &str) -> Option<bool> {
        self.roles.get(name).map(|r| r.login)
    }

    /// The password of `user`: the role's stored verifier, else the configured password; none
    /// once the role's VALID UNTIL has passed.
    fn user_secret(&self, user: &str) -> Option<Secret> {
        let role = self.roles.get(user)?;
        if role
            .valid_until
            .is_some_and(|t| t < chrono::Utc::now().timestamp_micros())
        {
            return None;
        }
        match &role.password {
            Some(text) => parse_verifier(text).map(|verifier| Secret {
                cleartext: None,
                verifier,
            }),
            None => self.secrets.get(user).cloned(),
        }
    }

    fn secret(&self, login: &LoginInfo) -> PgWireResult<Secret> {
        let user = login.user().unwrap_or_default();
        self.user_secret(user)
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_owned()))
    }

    fn cleartext(&self, login: &LoginInfo) -> PgWireResult<String> {
        let user = login.user().unwrap_or_default();
        self.secret(login)?
            .cleartext
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_owned()))
    }
}

/// The credentials as pgwire's mechanisms ask for them.
#[derive(Debug)]
struct Source(Arc<Credentials>);

#[async_trait]
impl AuthSource for Source {
    /// The MD5 mechanism's expectation: the hash of the cleartext with a fresh salt.
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let salt = random_bytes(4);
        let hash = hash_md5_password(user, &self.0.cleartext(login)?, &salt);
        Ok(Password::new(Some(salt), hash.into_bytes()))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<()>> {
        if self.0.cleartext(login)?.as_bytes() == presented {
            Ok(None)
        } else {
            Err(PgWireError::InvalidPassword(
                login.user().unwrap_or_default().to_owned(),
            ))
        }
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        Ok((self.0.secret(login)?.verifier.secret(), None))
    }
}

/// Authentication that asks for nothing.
struct Trust;

#[async_trait]
impl AuthMechanism for Trust {
    async fn begin(&mut self, _client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<AuthState> {
        Ok(AuthState::Ok {
            final_message: None,
            identity: None,
        })
    }

    async fn next(
        &mut self,
        _client: &(dyn ClientInfo + Send + Sync),
        _message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState> {
        Err(PgWireError::InvalidSASLState)
    }
}

/// The mechanism factories, one per method, over one set of credentials.
pub struct Authenticator {
    credentials: Arc<Credentials>,
    scram: SaslMechanisms,
    md5: Md5PasswordAuth<Source>,
    cleartext: CleartextPasswordAuth<Source>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Authenticator {
    /// Factories over `credentials`.
    pub fn new(credentials: Credentials) -> Authenticator {
        let credentials = Arc::new(credentials);
        let source = Arc::new(Source(credentials.clone()));
        let mut scram = ScramAuth::new(source.clone());
        scram.set_iterations(SCRAM_ITERATIONS);
        Authenticator {
            scram: SaslMechanisms::new(vec![Arc::new(scram)]),
            md5: Md5PasswordAuth::new(source.clone()),
            cleartext: CleartextPasswordAuth::new(source),
            credentials,
        }
    }

    /// The rules and roles.
    pub fn config(&self) -> &AuthConfig {
        self.credentials.config()
    }

    /// Whether a role called `name` exists, and whether it may log in.
    pub fn role(&self, name: &str) -> Option<bool> {
        self.credentials.role(name)
    }

    /// A fresh mechanism for `method` and `user`.
    pub fn mechanism(&self, method: AuthMethod, user: &str) -> Box<dyn AuthMechanism> {
        match method {
            AuthMethod::Trust | AuthMethod::Reject => Box::new(Trust),
            AuthMethod::ScramSha256 => self.scram.create(),
            AuthMethod::Md5 => {
                let has_cleartext = self
                    .credentials
                    .user_secret(user)
                    .is_some_and(|s| s.cleartext.is_some());
                if has_cleartext {
                    self.md5.create()
                } else {
                    self.scram.create()
                }
            }
            AuthMethod::Password => self.cleartext.create(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_strings_parse_as_postgresql_writes_them() {
        // SELECT rolpassword FROM pg_authid after ALTER ROLE ... PASSWORD 'secret' on PG 15.
        let v = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$\
                 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:\
                 ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
        let verifier = parse_verifier(v).expect("a verifier");
        assert_eq!(verifier.iterations, 4096);
        assert_eq!(verifier.salt, b"saltsaltsaltsalt");
        assert_eq!(verifier.stored_key, (0u8..32).collect::<Vec<_>>());
        assert_eq!(verifier.server_key, (32u8..64).collect::<Vec<_>>());
        assert!(parse_verifier("SCRAM-SHA-256$x:y").is_none());
        assert!(parse_verifier("md5abc").is_none());
    }

    #[test]
    fn derived_verifiers_parse_back() {
        let text = scram_verifier("secret");
        let verifier = parse_verifier(&text).expect("a verifier");
        assert_eq!(verifier.iterations, SCRAM_ITERATIONS);
        assert_eq!(verifier.salt.len(), 16);
        assert_ne!(scram_verifier("secret"), text, "a fresh salt each time");
    }
}

//! Client authentication settings shared by the servers that speak the PostgreSQL protocol
//! (datanode, coordinator): rules in the spirit of `pg_hba.conf` and the login roles with their
//! passwords.
//!
//! ```toml
//! [[auth.rules]]            # first match wins; the defaults below apply when none is given
//! address = "127.0.0.1/32"  # CIDR, "all", or "loopback"
//! user = "all"              # a role name or "all"
//! method = "trust"          # trust | scram-sha-256 | md5 | password | reject
//!
//! [[auth.users]]
//! name = "app"
//! password = "secret"       # cleartext, or a SCRAM verifier "SCRAM-SHA-256$4096:salt$stored:server"
//! ```
//!
//! Without rules, loopback clients are trusted (like `initdb -A trust` for local connections)
//! and every other address must authenticate with SCRAM-SHA-256. The superuser `postgres`
//! always exists (it needs a password, here or set with `ALTER ROLE postgres PASSWORD`, to
//! log in from elsewhere); the users listed here are login roles of the node beside those
//! `CREATE ROLE` makes.

use serde::Deserialize;
use std::net::IpAddr;

/// How a client proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// No proof.
    Trust,
    /// SCRAM-SHA-256 (SASL).
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// MD5 challenge (SCRAM when the password is stored only as a SCRAM verifier, as
    /// PostgreSQL does).
    Md5,
    /// Cleartext password.
    Password,
    /// Refused.
    Reject,
}

/// One rule: which clients it matches and how they authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    /// `all`, `loopback`, or an address range in CIDR form (`10.0.0.0/8`, `::1/128`); a bare
    /// address is a single host.
    pub address: String,
    /// A role name, or `all`.
    #[serde(default = "all")]
    pub user: String,
    /// The method.
    pub method: AuthMethod,
}

fn all() -> String {
    "all".into()
}

/// A login role and its password.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The role name.
    pub name: String,
    /// Cleartext, or a SCRAM-SHA-256 verifier as PostgreSQL stores it.
    #[serde(default)]
    pub password: Option<String>,
}

/// The `[auth]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Rules, first match wins; empty means the defaults (loopback trust, others SCRAM).
    pub rules: Vec<AuthRule>,
    /// Login roles besides `postgres`, and `postgres`'s password.
    pub users: Vec<UserConfig>,
}

/// The superuser every node has.
pub const SUPERUSER: &str = "postgres";

impl AuthConfig {
    /// Checks every rule's address and the user list; the error names the mistake.
    pub fn validate(&self) -> Result<(), String> {
        for rule in &self.rules {
            AddressPattern::parse(&rule.address)?;
        }
        let mut seen = std::collections::HashSet::new();
        for user in &self.users {
            if user.name.is_empty() {
                return Err("auth.users: a user needs a name".into());
            }
            if !seen.insert(user.name.as_str()) {
                return Err(format!(
                    "auth.users: user \"{}\" is listed twice",
                    user.name
                ));
            }
        }
        Ok(())
    }

    /// The method for a client at `address` logging in as `user`, or `None` when no rule
    /// matches (the connection is refused, as without a `pg_hba.conf` entry).
    pub fn method(&self, address: IpAddr, user: &str) -> Option<AuthMethod> {
        if self.rules.is_empty() {
            return Some(if address.is_loopback() {
                AuthMethod::Trust
            } else {
                AuthMethod::ScramSha256
            });
        }
        self.rules
            .iter()
            .find(|r| {
                (r.user == "all" || r.user == user)
                    && AddressPattern::parse(&r.address).is_ok_and(|p| p.matches(address))
            })
            .map(|r| r.method)
    }
}

/// The address part of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AddressPattern {
    All,
    Loopback,
    Network { base: IpAddr, bits: u8 },
}

impl AddressPattern {
    fn parse(text: &str) -> Result<AddressPattern, String> {
        match text {
            "all" => return Ok(AddressPattern::All),
            "loopback" | "samehost" => return Ok(AddressPattern::Loopback),
            _ => {}
        }
        let bad = || {
            format!(
                "auth.rules: invalid address \"{text}\" (a CIDR range, \"all\" or \"loopback\")"
            )
        };
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let base: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(AddressPattern::Network { base, bits })
    }

    fn matches(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        match self {
            AddressPattern::All => true,
            AddressPattern::Loopback => address.is_loopback(),
            AddressPattern::Network { base, bits } => match (base, address) {
                (IpAddr::V4(b), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - *bits as u32).unwrap_or(0);
                    u32::from(*b) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(b), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - *bits as u32).unwrap_or(0);
                    u128::from(*b) & mask == u128::from(a) & mask
                }
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(address: &str, user: &str, method: AuthMethod) -> AuthRule {
        AuthRule {
            address: address.into(),
            user: user.into(),
            method,
        }
    }

    #[test]
    fn defaults_trust_loopback_and_ask_others_for_scram() {
        let c = AuthConfig::default();
        assert_eq!(
            c.method("127.0.0.1".parse().unwrap(), "postgres"),
            Some(AuthMethod::Trust)
        );
        assert_eq!(
            c.method("::1".parse().unwrap(), "x"),
            Some(AuthMethod::Trust)
        );
        assert_eq!(
            c.method("10.1.2.3".parse().unwrap(), "postgres"),
            Some(AuthMethod::ScramSha256)
        );
    }

    #[test]
    fn rules_match_in_order_by_network_and_user() {
        let c = AuthConfig {
            rules: vec![
                rule("10.0.0.0/8", "app", AuthMethod::Md5),
                rule("10.0.0.0/8", "all", AuthMethod::ScramSha256),
                rule("192.168.1.7", "all", AuthMethod::Reject),
                rule("loopback", "all", AuthMethod::Password),
            ],
            users: vec![],
        };
        c.validate().unwrap();
        let m = |a: &str, u: &str| c.method(a.parse().unwrap(), u);
        assert_eq!(m("10.9.8.7", "app"), Some(AuthMethod::Md5));
        assert_eq!(m("10.9.8.7", "bob"), Some(AuthMethod::ScramSha256));
        assert_eq!(m("192.168.1.7", "bob"), Some(AuthMethod::Reject));
        assert_eq!(m("192.168.1.8", "bob"), None);
        assert_eq!(m("127.0.0.1", "bob"), Some(AuthMethod::Password));
        assert_eq!(m("::ffff:10.0.0.1", "bob"), Some(AuthMethod::ScramSha256));
        for bad in ["10.0.0.0/33", "nonsense", "::1/129"] {
            let c = AuthConfig {
                rules: vec![rule(bad, "all", AuthMethod::Trust)],
                users: vec![],
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}

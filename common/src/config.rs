//! Configuration loading shared by every rxc server binary.
//!
//! Each server reads one TOML file (`--config FILE`) into its own config struct and then lets a
//! few command-line flags override it. With no file at all the struct's `Default` applies, so every
//! binary starts with sensible settings.
//!
//! ```text
//!   Default::default()  ──▶  --config FILE (TOML)  ──▶  --data-dir/--listen/--node-name/--gtm/--log-format
//!        built-in             replaces what it names          replace what they name
//!                                        └──────────────┬──────────────┘
//!                                                   validate
//! ```
//!
//! Every config struct is `#[serde(deny_unknown_fields, default)]`, so a misspelt key is an error
//! that names the key and the file. serde cannot combine `deny_unknown_fields` with `flatten`, so
//! the common settings are not a flattened sub-struct: each server's struct declares the fields
//! `node_name`, `listen`, `data_dir`, `gtm` and `log_format` itself and implements
//! [`ServerConfig`], usually with [`impl_server_config!`](crate::impl_server_config):
//!
//! ```
//! use rxc_common::config::LogFormat;
//! use serde::Deserialize;
//! use std::path::PathBuf;
//!
//! /// Settings of an example server.
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! struct ExampleConfig {
//!     node_name: String,
//!     listen: String,
//!     data_dir: PathBuf,
//!     gtm: Vec<String>,
//!     log_format: LogFormat,
//!     /// A setting of this server only.
//!     pool_size: usize,
//! }
//!
//! impl Default for ExampleConfig {
//!     fn default() -> Self {
//!         ExampleConfig {
//!             node_name: "example1".into(),
//!             listen: "127.0.0.1:7000".into(),
//!             data_dir: "example-data".into(),
//!             gtm: vec!["127.0.0.1:6666".into()],
//!             log_format: LogFormat::Text,
//!             pool_size: 8,
//!         }
//!     }
//! }
//!
//! rxc_common::impl_server_config!(ExampleConfig);
//! ```
//!
//! A server that never talks to a GTM (the GTM itself) has no `gtm` field and uses
//! `impl_server_config!(GtmConfig, without_gtm)`; `--gtm` is then refused with a clear error.

use clap::ValueEnum;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Default port of `rxc-gtm`.
pub const DEFAULT_GTM_PORT: u16 = 6666;
/// Default port of `rxc-gtm-proxy`.
pub const DEFAULT_GTM_PROXY_PORT: u16 = 6667;
/// Default port of `rxc-coordinator`.
pub const DEFAULT_COORDINATOR_PORT: u16 = 5432;
/// Default port of `rxc-datanode`.
pub const DEFAULT_DATANODE_PORT: u16 = 15432;

/// Longest node name accepted, in bytes (PostgreSQL's `NAMEDATALEN - 1`).
pub const MAX_NODE_NAME_LEN: usize = 63;

/// The flags every server binary accepts; `#[command(flatten)]` them into the binary's CLI.
///
/// Each flag, when given, overrides the same setting of the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file; the flags below override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Name of this node in the cluster.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// GTM or GTM proxy addresses, in failover order.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub gtm: Option<String>,
    /// Log output format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Mutable references to the settings every server shares, so [`load`] can override and check
/// them whatever struct holds them.
#[derive(Debug)]
pub struct CommonFieldsMut<'a> {
    /// Name of this node in the cluster.
    pub node_name: &'a mut String,
    /// `HOST:PORT` to listen on.
    pub listen: &'a mut String,
    /// Data directory.
    pub data_dir: &'a mut PathBuf,
    /// GTM or GTM proxy addresses in failover order; `None` for a server that talks to no GTM.
    pub gtm: Option<&'a mut Vec<String>>,
    /// Log output format.
    pub log_format: &'a mut LogFormat,
}

/// A server's configuration struct: TOML-deserializable, with defaults, exposing the common
/// settings. Implement it with [`impl_server_config!`](crate::impl_server_config).
pub trait ServerConfig: DeserializeOwned + Default {
    /// The common settings of this config.
    fn common(&mut self) -> CommonFieldsMut<'_>;

    /// Checks the server's own settings after flags are applied; the message says what is wrong.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Implements [`ServerConfig`](crate::config::ServerConfig) for a struct with fields named
/// `node_name`, `listen`, `data_dir`, `gtm` and `log_format`. Pass `without_gtm` for a struct
/// without a `gtm` field.
#[macro_export]
macro_rules! impl_server_config {
    ($ty:ty) => {
        impl $crate::config::ServerConfig for $ty {
            fn common(&mut self) -> $crate::config::CommonFieldsMut<'_> {
                $crate::config::CommonFieldsMut {
                    node_name: &mut self.node_name,
                    listen: &mut self.listen,
                    data_dir: &mut self.data_dir,
                    gtm: ::std::option::Option::Some(&mut self.gtm),
                    log_format: &mut self.log_format,
                }
            }
        }
    };
    ($ty:ty, without_gtm) => {
        impl $crate::config::ServerConfig for $ty {
            fn common(&mut self) -> $crate::config::CommonFieldsMut<'_> {
                $crate::config::CommonFieldsMut {
                    node_name: &mut self.node_name,
                    listen: &mut self.listen,
                    data_dir: &mut self.data_dir,
                    gtm: ::std::option::Option::None,
                    log_format: &mut self.log_format,
                }
            }
        }
    };
}

/// Just the common settings: the config of a server with no settings of its own, and the
/// reference for the field names and meanings every server config repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonConfig {
    /// Name of this node in the cluster (`dn1`, `coord1`, ...): ASCII letters, digits, `_`, `-`
    /// and `.`, at most 63 bytes.
    pub node_name: String,
    /// `HOST:PORT` to listen on; port 0 picks a free port.
    pub listen: String,
    /// Data directory; created if missing.
    pub data_dir: PathBuf,
    /// GTM or GTM proxy addresses (`HOST:PORT`), in failover order.
    pub gtm: Vec<String>,
    /// Log output format: `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            node_name: "rxc".into(),
            listen: "127.0.0.1:0".into(),
            data_dir: PathBuf::from("rxc-data"),
            gtm: vec![format!("127.0.0.1:{DEFAULT_GTM_PORT}")],
            log_format: LogFormat::Text,
        }
    }
}

impl_server_config!(CommonConfig);

/// Why a configuration could not be loaded. Each message is one line naming where the bad value
/// came from (a flag, the config file or the built-in default).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or does not match the server's settings.
    #[error("config file {}: {message}{}", .path.display(), describe(.location.as_ref()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. "unknown field `foo`, expected one of ...".
        message: String,
        /// Where in the file, when known.
        location: Option<TextLocation>,
    },
    /// A setting has a value that cannot be used.
    #[error("{origin}: invalid {setting} `{value}`: {reason}")]
    Invalid {
        /// Where the value came from: `--listen`, `config file PATH` or `built-in default`.
        origin: String,
        /// The setting's name.
        setting: &'static str,
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A flag was given that this server does not use.
    #[error("{flag} is not used by this server")]
    UnusedFlag {
        /// The flag, e.g. `--gtm`.
        flag: &'static str,
    },
    /// The server's own check ([`ServerConfig::validate`]) failed.
    #[error("{origin}: {message}")]
    Server {
        /// `config file PATH` or `configuration`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A position in a config file, with the text of its line so the message shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLocation {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The line's text, trimmed and shortened to at most 80 characters.
    pub text: String,
}

impl TextLocation {
    /// The location of byte `offset` of `text`.
    fn at(text: &str, offset: usize) -> TextLocation {
        let offset = offset.min(text.len());
        let offset = (0..=offset)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let line_text = text[line_start..line_end].trim();
        let mut shown: String = line_text.chars().take(80).collect();
        if shown.len() < line_text.len() {
            shown.push_str("...");
        }
        TextLocation {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            text: shown,
        }
    }
}

fn describe(location: Option<&TextLocation>) -> String {
    match location {
        Some(at) => format!(" (line {}, column {}: `{}`)", at.line, at.column, at.text),
        None => String::new(),
    }
}

/// Loads a server's configuration: the file given by `--config` (or the defaults when there is
/// none), then the flag overrides, then validation of the common settings and
/// [`ServerConfig::validate`].
pub fn load<C: ServerConfig>(args: &ServerArgs) -> Result<C, ConfigError> {
    let mut config: C = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            parse(&text, path)?
        }
        None => C::default(),
    };
    apply_overrides(&mut config, args)?;
    validate_common(&mut config, args)?;
    config.validate().map_err(|message| ConfigError::Server {
        origin: match &args.config {
            Some(path) => file_origin(path),
            None => "configuration".into(),
        },
        message,
    })?;
    Ok(config)
}

/// Parses the TOML text of a config file; `path` only names the file in errors.
pub fn parse<C: DeserializeOwned>(text: &str, path: &Path) -> Result<C, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        message: err.message().trim_end().to_string(),
        location: err.span().map(|span| TextLocation::at(text, span.start)),
    })
}

fn apply_overrides<C: ServerConfig>(config: &mut C, args: &ServerArgs) -> Result<(), ConfigError> {
    let common = config.common();
    if let Some(node_name) = &args.node_name {
        *common.node_name = node_name.clone();
    }
    if let Some(listen) = &args.listen {
        *common.listen = listen.clone();
    }
    if let Some(data_dir) = &args.data_dir {
        *common.data_dir = data_dir.clone();
    }
    if let Some(log_format) = args.log_format {
        *common.log_format = log_format;
    }
    if let Some(list) = &args.gtm {
        let Some(gtm) = common.gtm else {
            return Err(ConfigError::UnusedFlag { flag: "--gtm" });
        };
        *gtm = parse_address_list(list).map_err(|reason| ConfigError::Invalid {
            origin: "--gtm".into(),
            setting: "gtm",
            value: list.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Splits a comma-separated `HOST:PORT` list (as given to `--gtm`), trimming blanks around each
/// entry; an empty entry or a bad address is refused.
pub fn parse_address_list(list: &str) -> Result<Vec<String>, String> {
    let mut addresses = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(format!("entry {} is empty", i + 1));
        }
        split_host_port(entry).map_err(|reason| format!("`{entry}`: {reason}"))?;
        addresses.push(entry.to_string());
    }
    Ok(addresses)
}

/// Splits `HOST:PORT` at its last `:`. The host is a name, an IPv4 address or a bracketed IPv6
/// address (`[::1]:5432`); it is not resolved here.
pub fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("expected HOST:PORT".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port `{port}` is not a number from 0 to 65535"))?;
    if host.is_empty() {
        return Err("expected HOST:PORT, the host is empty".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err("unbalanced `[` in the host".into());
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{inner}` is not an IPv6 address"));
        }
    } else if host.contains(':') {
        return Err("an IPv6 host must be written in brackets, as in [::1]:5432".into());
    } else if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!("the host contains `{bad}`"));
    }
    Ok((host, port))
}

/// Checks a node name: non-empty, at most [`MAX_NODE_NAME_LEN`] bytes, ASCII letters, digits,
/// `_`, `-` and `.`.
pub fn check_node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the node name is empty".into());
    }
    if name.len() > MAX_NODE_NAME_LEN {
        return Err(format!("longer than {MAX_NODE_NAME_LEN} bytes"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "contains `{bad}`; use ASCII letters, digits, `_`, `-` and `.`"
        ));
    }
    Ok(())
}

fn file_origin(path: &Path) -> String {
    format!("config file {}", path.display())
}

/// Where the current value of a common setting came from, for error messages.
fn origin(flag: &'static str, flag_given: bool, args: &ServerArgs) -> String {
    match (&args.config, flag_given) {
        (_, true) => flag.into(),
        (Some(path), false) => file_origin(path),
        (None, false) => "built-in default".into(),
    }
}

fn validate_common<C: ServerConfig>(config: &mut C, args: &ServerArgs) -> Result<(), ConfigError> {
    let common = config.common();
    check_node_name(common.node_name).map_err(|reason| ConfigError::Invalid {
        origin: origin("--node-name", args.node_name.is_some(), args),
        setting: "node_name",
        value: common.node_name.clone(),
        reason,
    })?;
    split_host_port(common.listen).map_err(|reason| ConfigError::Invalid {
        origin: origin("--listen", args.listen.is_some(), args),
        setting: "listen",
        value: common.listen.clone(),
        reason,
    })?;
    if common.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::Invalid {
            origin: origin("--data-dir", args.data_dir.is_some(), args),
            setting: "data_dir",
            value: String::new(),
            reason: "the path is empty".into(),
        });
    }
    if let Some(gtm) = common.gtm {
        for address in gtm.iter() {
            let checked = split_host_port(address).and_then(|(_, port)| match port {
                0 => Err("port 0 cannot be connected to".to_string()),
                _ => Ok(()),
            });
            checked.map_err(|reason| ConfigError::Invalid {
                origin: origin("--gtm", args.gtm.is_some(), args),
                setting: "gtm",
                value: address.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config struct like a server's: the common fields plus one of its own.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct TestConfig {
        node_name: String,
        listen: String,
        data_dir: PathBuf,
        gtm: Vec<String>,
        log_format: LogFormat,
        pool_size: usize,
    }

    impl Default for TestConfig {
        fn default() -> Self {
            TestConfig {
                node_name: "dn1".into(),
                listen: "127.0.0.1:15432".into(),
                data_dir: "dn1-data".into(),
                gtm: vec!["127.0.0.1:6666".into()],
                log_format: LogFormat::Text,
                pool_size: 4,
            }
        }
    }

    impl_server_config!(TestConfig);

    /// A server without a GTM address.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct NoGtmConfig {
        node_name: String,
        listen: String,
        data_dir: PathBuf,
        log_format: LogFormat,
    }

    impl Default for NoGtmConfig {
        fn default() -> Self {
            NoGtmConfig {
                node_name: "gtm".into(),
                listen: "127.0.0.1:6666".into(),
                data_dir: "gtm-data".into(),
                log_format: LogFormat::Text,
            }
        }
    }

    impl_server_config!(NoGtmConfig, without_gtm);

    /// Writes `text` to a fresh file under the temp directory and returns its path.
    fn config_file(name: &str, text: &str) -> PathBuf {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "rxc-config-test-{}-{}",
            std::process::id(),
            u64::from_le_bytes(random)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn args_with_file(path: &Path) -> ServerArgs {
        ServerArgs {
            config: Some(path.to_path_buf()),
            ..ServerArgs::default()
        }
    }

    #[test]
    fn defaults_without_file() {
        let config: TestConfig = load(&ServerArgs::default()).unwrap();
        assert_eq!(config, TestConfig::default());
        let common: CommonConfig = load(&ServerArgs::default()).unwrap();
        assert_eq!(common, CommonConfig::default());
    }

    #[test]
    fn file_values_apply_and_others_keep_defaults() {
        let path = config_file(
            "dn.toml",
            "node_name = \"dn7\"\ngtm = [\"a:1\", \"b:2\"]\nlog_format = \"json\"\n",
        );
        let config: TestConfig = load(&args_with_file(&path)).unwrap();
        assert_eq!(config.node_name, "dn7");
        assert_eq!(config.gtm, ["a:1", "b:2"]);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.listen, "127.0.0.1:15432");
        assert_eq!(config.pool_size, 4);
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let path = config_file("gtm.toml", "node_name = \"dn1\"\nfoo = 1\n");
        let err = load::<TestConfig>(&args_with_file(&path)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("config file {}: ", path.display())),
            "{message}"
        );
        assert!(message.contains("unknown field `foo`"), "{message}");
        assert!(message.contains("expected one of"), "{message}");
        assert!(
            message.contains("(line 2, column 1: `foo = 1`)"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let path = config_file("dn.toml", "pool_size = \"many\"\n");
        let err = load::<TestConfig>(&args_with_file(&path)).unwrap_err();
        assert!(err.to_string().contains("pool_size"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let path = std::env::temp_dir().join("rxc-config-test-does-not-exist/x.toml");
        let err = load::<TestConfig>(&args_with_file(&path)).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("x.toml"), "{err}");
    }

    #[test]
    fn flags_override_file_values() {
        let path = config_file(
            "dn.toml",
            "node_name = \"dn7\"\nlisten = \"0.0.0.0:1\"\ngtm = [\"a:1\"]\npool_size = 9\n",
        );
        let args = ServerArgs {
            config: Some(path),
            data_dir: Some("/srv/dn9".into()),
            listen: Some("[::1]:2".into()),
            node_name: Some("dn9".into()),
            gtm: Some(" gtm1:6667 , gtm2:6666".into()),
            log_format: Some(LogFormat::Json),
        };
        let config: TestConfig = load(&args).unwrap();
        assert_eq!(
            config,
            TestConfig {
                node_name: "dn9".into(),
                listen: "[::1]:2".into(),
                data_dir: "/srv/dn9".into(),
                gtm: vec!["gtm1:6667".into(), "gtm2:6666".into()],
                log_format: LogFormat::Json,
                pool_size: 9,
            }
        );
    }

    #[test]
    fn bad_gtm_flag_is_refused() {
        for list in ["a:1,,b:2", "", "a:1,", "a", "a:99999", "a:0"] {
            let args = ServerArgs {
                gtm: Some(list.into()),
                ..ServerArgs::default()
            };
            let err = load::<TestConfig>(&args).unwrap_err();
            assert!(err.to_string().starts_with("--gtm: invalid gtm"), "{err}");
        }
    }

    #[test]
    fn gtm_flag_refused_when_unused() {
        let args = ServerArgs {
            gtm: Some("a:1".into()),
            ..ServerArgs::default()
        };
        let err = load::<NoGtmConfig>(&args).unwrap_err();
        assert_eq!(err.to_string(), "--gtm is not used by this server");
        let err = parse::<NoGtmConfig>("gtm = []", Path::new("gtm.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown field `gtm`"), "{err}");
    }

    #[test]
    fn bad_listen_is_refused() {
        for listen in [
            "localhost",
            "localhost:",
            ":5432",
            "::1:5432",
            "host:port",
            "a b:1",
        ] {
            let args = ServerArgs {
                listen: Some(listen.into()),
                ..ServerArgs::default()
            };
            let err = load::<TestConfig>(&args).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("--listen: invalid listen `{listen}`")),
                "{err}"
            );
        }
        let path = config_file("dn.toml", "listen = \"nowhere\"\n");
        let err = load::<TestConfig>(&args_with_file(&path)).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "config file {}: invalid listen `nowhere`: expected HOST:PORT",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn good_addresses_are_accepted() {
        assert_eq!(split_host_port("localhost:0"), Ok(("localhost", 0)));
        assert_eq!(split_host_port("10.0.0.1:5432"), Ok(("10.0.0.1", 5432)));
        assert_eq!(split_host_port("[::1]:6666"), Ok(("[::1]", 6666)));
        assert_eq!(
            parse_address_list("a:1, b-2.example:3"),
            Ok(vec!["a:1".into(), "b-2.example:3".into()])
        );
    }

    #[test]
    fn bad_node_name_is_refused() {
        for name in ["", "dn 1", "dn'1", &"x".repeat(64)] {
            let args = ServerArgs {
                node_name: Some(name.to_string()),
                ..ServerArgs::default()
            };
            let err = load::<TestConfig>(&args).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("--node-name: invalid node_name"),
                "{err}"
            );
        }
    }

    #[test]
    fn server_flags_parse_with_clap() {
        use clap::Parser;

        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            server: ServerArgs,
        }

        let cli = Cli::try_parse_from([
            "rxc-test",
            "--config",
            "x.toml",
            "--log-format",
            "json",
            "--gtm",
            "a:1,b:2",
        ])
        .unwrap();
        assert_eq!(cli.server.config, Some(PathBuf::from("x.toml")));
        assert_eq!(cli.server.log_format, Some(LogFormat::Json));
        assert_eq!(cli.server.gtm.as_deref(), Some("a:1,b:2"));
        assert!(Cli::try_parse_from(["rxc-test", "--log-format", "xml"]).is_err());
    }
}

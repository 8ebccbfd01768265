//! The cluster description, `cluster.toml`, and the components it resolves to.
//!
//! ```toml
//! [gtm]                      # required: the active GTM
//! name = "gtm"
//! host = "127.0.0.1"
//! port = 6666
//! data_dir = "gtm"           # absolute, or relative to this file's directory
//!
//! [gtm_standby]              # optional: its synchronous standby
//! [[proxy]]                  # GTM proxies (the nodes reach the GTM through them)
//! [[datanode]]               # at least one; `primary = true` on at most one
//! [[coordinator]]            # at least one; `preferred = ["dn1"]`
//! ```
//!
//! Every component has `name`, `host`, `port` and `data_dir`, and optionally `config` (a
//! table rxc writes to the component's `--config` file) and `args` (extra command-line
//! arguments). Datanodes and coordinators may name the `proxy` they reach the GTM through;
//! by default that is the first `[[proxy]]`, or with no proxy at all the GTM and its standby
//! directly. A proxy follows the GTM and then its standby (its failover list).
//!
//! Loading ([`Cluster::load`]) happens in two steps: serde parses the file (the structs of
//! [`mod@file`], `deny_unknown_fields`: a misspelt key is an error naming it, with its line),
//! then [`validate`] checks everything serde cannot and reports every mistake at once. Only
//! then are paths resolved and the [`Component`]s built, and only then does anything start.
//!
//! Relative paths (`data_dir`, `log_dir`, `bin_dir`) are relative to the directory of the
//! cluster file, whatever the current directory is; `~` is not expanded.

pub mod file;
pub mod validate;

pub use file::{ClusterFile, CoordinatorSpec, DatanodeSpec, ServerSpec};

use anyhow::{bail, Context, Result};
use file::commons;
use rxc_common::config::ConfigError;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Component as PathPart, Path, PathBuf};

/// What a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The active GTM.
    Gtm,
    /// The GTM's synchronous standby.
    GtmStandby,
    /// A GTM proxy.
    Proxy,
    /// A datanode.
    Datanode,
    /// A coordinator.
    Coordinator,
}

impl Kind {
    /// Every kind, in start order.
    pub const ALL: [Kind; 5] = [
        Kind::Gtm,
        Kind::GtmStandby,
        Kind::Proxy,
        Kind::Datanode,
        Kind::Coordinator,
    ];

    /// The binary that runs it.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Gtm | Kind::GtmStandby => "rxc-gtm",
            Kind::Proxy => "rxc-gtm-proxy",
            Kind::Datanode => "rxc-datanode",
            Kind::Coordinator => "rxc-coordinator",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Gtm => "gtm",
            Kind::GtmStandby => "gtm standby",
            Kind::Proxy => "gtm proxy",
            Kind::Datanode => "datanode",
            Kind::Coordinator => "coordinator",
        })
    }
}

/// One component of a validated cluster, with every path absolute.
#[derive(Debug, Clone)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The host it runs on.
    pub host: String,
    /// The port it listens at.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where its stdout and stderr are appended.
    pub log_file: PathBuf,
    /// Settings for its `--config` file.
    pub config: Option<toml::Table>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Where it reaches the GTM (`--gtm`, in failover order), or for the standby the active
    /// GTM (`--standby-of`, one address); empty for the GTM.
    pub upstream: Vec<String>,
    /// A datanode registered with `PRIMARY`.
    pub primary: bool,
    /// For a coordinator: the datanodes it registers with `PREFERRED`.
    pub preferred: Vec<String>,
}

impl Component {
    /// `HOST:PORT`, with an IPv6 host in brackets.
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }

    /// The pid file rxc keeps while the component runs.
    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join("rxc.pid")
    }

    /// The `--config` file rxc writes from the `config` table.
    pub fn config_file(&self) -> PathBuf {
        self.data_dir.join("rxc.config.toml")
    }

    /// Its command-line arguments (the binary is [`Kind::binary`]).
    pub fn command_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--node-name".into(),
            self.name.clone().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--listen".into(),
            self.address().into(),
        ];
        match self.kind {
            Kind::Gtm => {}
            Kind::GtmStandby => {
                args.push("--standby-of".into());
                args.push(self.upstream.join(",").into());
            }
            Kind::Proxy | Kind::Datanode | Kind::Coordinator => {
                args.push("--gtm".into());
                args.push(self.upstream.join(",").into());
            }
        }
        if self.config.is_some() {
            args.push("--config".into());
            args.push(self.config_file().into());
        }
        args.extend(self.args.iter().map(OsString::from));
        args
    }

    /// Whether it runs on this machine: a loopback address, `localhost`, or this machine's
    /// host name.
    pub fn is_local(&self) -> bool {
        is_local_host(&self.host)
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether `host` names this machine: a loopback address, `localhost`, or the host name.
pub fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host_name = rustix::system::uname();
    let own = host_name.nodename().to_string_lossy();
    bare.eq_ignore_ascii_case("localhost") || bare.eq_ignore_ascii_case(&own)
}

/// A validated cluster: its components in start order and where their binaries are.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The cluster file, absolute.
    pub file: PathBuf,
    /// The directory holding the component binaries.
    pub bin_dir: PathBuf,
    /// Every component, in start order (GTM, standby, proxies, datanodes, coordinators).
    pub components: Vec<Component>,
}

impl Cluster {
    /// Reads, parses and validates the cluster file at `path`.
    pub fn load(path: &Path) -> Result<Cluster> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read cluster file {}", path.display()))?;
        Cluster::parse(&text, path)
    }

    /// Parses and validates the text of the cluster file at `path` (whose directory relative
    /// paths are resolved against).
    pub fn parse(text: &str, path: &Path) -> Result<Cluster> {
        let file: ClusterFile = rxc_common::config::parse(text, path).map_err(|e| match e {
            ConfigError::Parse {
                message, location, ..
            } => {
                let at = location.map_or(String::new(), |at| {
                    format!(" (line {}, column {}: `{}`)", at.line, at.column, at.text)
                });
                anyhow::anyhow!("cluster file {}: {message}{at}", path.display())
            }
            other => anyhow::anyhow!("cluster file {}: {other}", path.display()),
        })?;
        let path = lexical_absolute(path)?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mistakes = validate::validate(&file, &dir);
        if !mistakes.is_empty() {
            let count = match mistakes.len() {
                1 => "1 mistake".to_string(),
                n => format!("{n} mistakes"),
            };
            bail!(
                "cluster file {}: {count}:\n  {}",
                path.display(),
                mistakes.join("\n  ")
            );
        }
        let bin_dir = match (std::env::var_os("RXC_BIN_DIR"), &file.bin_dir) {
            (Some(env), _) if !env.is_empty() => lexical_absolute(Path::new(&env))?,
            (_, Some(configured)) => resolve(&dir, configured),
            _ => own_dir()?,
        };
        let components = resolve_components(&file, &dir);
        Ok(Cluster {
            file: path,
            bin_dir,
            components,
        })
    }

    /// The component named `name`, or an error listing the names there are.
    pub fn component(&self, name: &str) -> Result<&Component> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .with_context(|| {
                let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "no component named `{name}` in {} (there are: {})",
                    self.file.display(),
                    names.join(", ")
                )
            })
    }

    /// The components a command acts on: the one named, or all of them.
    pub fn select(&self, name: Option<&str>) -> Result<Vec<&Component>> {
        match name {
            Some(name) => Ok(vec![self.component(name)?]),
            None => Ok(self.components.iter().collect()),
        }
    }

    /// The coordinators, in file order.
    pub fn coordinators(&self) -> impl Iterator<Item = &Component> {
        self.of_kind(Kind::Coordinator)
    }

    /// The components of `kind`, in file order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(move |c| c.kind == kind)
    }

    /// The path of a component binary.
    pub fn binary(&self, kind: Kind) -> PathBuf {
        self.bin_dir.join(kind.binary())
    }
}

/// The directory of the running `rxc` executable.
fn own_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the rxc executable's path")?;
    let dir = exe
        .parent()
        .context("the rxc executable's path has no directory")?;
    Ok(dir.to_path_buf())
}

/// `path` made absolute against the current directory, with `.` and `..` removed lexically.
fn lexical_absolute(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    Ok(normalize(&absolute))
}

/// `path` resolved against `dir` when relative, with `.` and `..` removed lexically.
fn resolve(dir: &Path, path: &Path) -> PathBuf {
    normalize(&dir.join(path))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The components of a validated file, paths resolved against `dir`.
fn resolve_components(file: &ClusterFile, dir: &Path) -> Vec<Component> {
    let gtm_address = address(&file.gtm.host, file.gtm.port);
    let mut gtm_list = vec![gtm_address.clone()];
    gtm_list.extend(file.gtm_standby.iter().map(|s| address(&s.host, s.port)));
    let proxy_address: HashMap<&str, String> = file
        .proxies
        .iter()
        .map(|p| (p.name.as_str(), address(&p.host, p.port)))
        .collect();
    // Datanodes and coordinators: their own proxy, else the first, else the GTM directly.
    let node_upstream = |proxy: Option<&str>| -> Vec<String> {
        match proxy.or(file.proxies.first().map(|p| p.name.as_str())) {
            Some(name) => vec![proxy_address[name].clone()],
            None => gtm_list.clone(),
        }
    };
    commons(file)
        .into_iter()
        .map(|c| {
            let data_dir = resolve(dir, c.data_dir);
            let log_file = match &file.log_dir {
                Some(log_dir) => resolve(dir, log_dir).join(format!("{}.log", c.name)),
                None => {
                    let mut log = data_dir.clone().into_os_string();
                    log.push(".log");
                    PathBuf::from(log)
                }
            };
            let upstream = match c.kind {
                Kind::Gtm => Vec::new(),
                Kind::GtmStandby => vec![gtm_address.clone()],
                Kind::Proxy => gtm_list.clone(),
                Kind::Datanode | Kind::Coordinator => node_upstream(c.proxy),
            };
            Component {
                name: c.name.to_string(),
                kind: c.kind,
                host: c.host.to_string(),
                port: c.port,
                log_file,
                data_dir,
                config: c.config.cloned(),
                args: c.args.to_vec(),
                upstream,
                primary: c.primary,
                preferred: c.preferred.to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid cluster file with one component of each kind.
    pub(crate) const VALID: &str = r#"
        [gtm]
        name = "gtm"
        host = "127.0.0.1"
        port = 6666
        data_dir = "gtm"

        [gtm_standby]
        name = "gtm_standby"
        host = "127.0.0.1"
        port = 6668
        data_dir = "/srv/rxc/gtm_standby"

        [[proxy]]
        name = "p1"
        host = "127.0.0.1"
        port = 6667
        data_dir = "p1"

        [[datanode]]
        name = "dn1"
        host = "127.0.0.1"
        port = 15432
        data_dir = "data/../dn1"
        primary = true
        config = { block_cache_mb = 32 }

        [[coordinator]]
        name = "coord1"
        host = "localhost"
        port = 5432
        data_dir = "coord1"
        preferred = ["dn1"]
        args = ["--log-format", "json"]
    "#;

    /// Parses `text` as `/etc/rxc/cluster.toml`.
    pub(crate) fn parse(text: &str) -> Result<Cluster> {
        Cluster::parse(text, Path::new("/etc/rxc/cluster.toml"))
    }

    /// The error `text` is refused with.
    pub(crate) fn error(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("the file should be refused"))
    }

    #[test]
    fn a_valid_file_resolves_paths_and_upstreams() {
        let cluster = parse(VALID).unwrap();
        let names: Vec<(&str, Kind)> = cluster
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("gtm", Kind::Gtm),
                ("gtm_standby", Kind::GtmStandby),
                ("p1", Kind::Proxy),
                ("dn1", Kind::Datanode),
                ("coord1", Kind::Coordinator)
            ]
        );
        let dn1 = cluster.component("dn1").unwrap();
        assert_eq!(dn1.data_dir, Path::new("/etc/rxc/dn1"));
        assert_eq!(dn1.log_file, Path::new("/etc/rxc/dn1.log"));
        assert_eq!(dn1.upstream, ["127.0.0.1:6667"]);
        assert!(dn1.primary);
        let proxy = cluster.component("p1").unwrap();
        assert_eq!(proxy.upstream, ["127.0.0.1:6666", "127.0.0.1:6668"]);
        let standby = cluster.component("gtm_standby").unwrap();
        assert_eq!(standby.data_dir, Path::new("/srv/rxc/gtm_standby"));
        assert_eq!(standby.upstream, ["127.0.0.1:6666"]);
        let coord = cluster.component("coord1").unwrap();
        assert_eq!(coord.preferred, ["dn1"]);
        let args: Vec<String> = coord
            .command_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--node-name",
                "coord1",
                "--data-dir",
                "/etc/rxc/coord1",
                "--listen",
                "localhost:5432",
                "--gtm",
                "127.0.0.1:6667",
                "--log-format",
                "json"
            ]
        );
        let dn_args = dn1.command_args();
        assert!(dn_args.contains(&OsString::from("/etc/rxc/dn1/rxc.config.toml")));
        assert!(cluster.component("dn9").is_err());
    }

    #[test]
    fn without_a_proxy_nodes_use_the_gtm_and_its_standby() {
        let mut file: ClusterFile = toml::from_str(VALID).unwrap();
        file.proxies.clear();
        let cluster = parse(&toml::to_string(&file).unwrap()).unwrap();
        assert_eq!(
            cluster.component("dn1").unwrap().upstream,
            ["127.0.0.1:6666", "127.0.0.1:6668"]
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = error(&VALID.replace("primary = true", "primray = true"));
        assert!(e.contains("unknown field `primray`"), "{e}");
        assert!(e.contains("line 25, column 9: `primray = true`"), "{e}");
        assert!(e.starts_with("cluster file /etc/rxc/cluster.toml"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = error(&VALID.replace("port = 15432", ""));
        assert!(e.contains("missing field `port`"), "{e}");
    }

    #[test]
    fn local_hosts() {
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("127.0.0.2"));
        assert!(is_local_host("::1"));
        assert!(is_local_host("localhost"));
        assert!(!is_local_host("10.1.2.3"));
        assert!(!is_local_host("db7.example.com"));
        assert_eq!(address("::1", 5), "[::1]:5");
    }

    #[test]
    fn a_generated_file_parses_back() {
        let file: ClusterFile = toml::from_str(VALID).unwrap();
        let text = toml::to_string(&file).unwrap();
        let again = parse(&text).unwrap();
        assert_eq!(again.components.len(), 5);
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../cluster.example.toml");
        let cluster = Cluster::parse(text, Path::new("/srv/rxc/cluster.toml")).unwrap();
        assert_eq!(cluster.components.len(), 7);
        let coord2 = cluster.component("coord2").unwrap();
        assert_eq!(coord2.data_dir, Path::new("/srv/rxc/data/coord2"));
        assert!(coord2.config.is_some());
    }

    #[test]
    fn logs_go_beside_the_data_directory_or_to_log_dir() {
        let text = VALID.replace("data/../dn1", "dn1.data");
        let cluster = parse(&text).unwrap();
        let dn1 = cluster.component("dn1").unwrap();
        assert_eq!(dn1.log_file, Path::new("/etc/rxc/dn1.data.log"));
        let cluster = parse(&format!("log_dir = \"/var/log/rxc\"\n{text}")).unwrap();
        let dn1 = cluster.component("dn1").unwrap();
        assert_eq!(dn1.log_file, Path::new("/var/log/rxc/dn1.log"));
    }

    #[test]
    fn hosts_may_share_a_data_directory_path() {
        let text = VALID
            .replace("data_dir = \"p1\"", "data_dir = \"coord1\"")
            .replace("host = \"localhost\"", "host = \"db2.example.com\"");
        assert!(parse(&text).is_ok());
        let e = error(&text.replace("db2.example.com", "127.0.0.1"));
        assert!(e.contains("duplicate data_dir /etc/rxc/coord1"), "{e}");
    }
}

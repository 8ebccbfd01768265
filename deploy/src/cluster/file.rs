//! The cluster file's format: what serde reads from `cluster.toml` (and writes, for
//! `rxc up`), every table `deny_unknown_fields`.

use super::Kind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The cluster file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Where the component binaries are; default: the directory of the `rxc` executable.
    /// The environment variable `RXC_BIN_DIR` overrides both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<PathBuf>,
    /// Where the components' log files go (`NAME.log`); default: beside each data
    /// directory, as `DATA_DIR.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// The active GTM.
    pub gtm: ServerSpec,
    /// The GTM's synchronous standby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtm_standby: Option<ServerSpec>,
    /// GTM proxies.
    #[serde(default, rename = "proxy", skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<ServerSpec>,
    /// Datanodes.
    #[serde(default, rename = "datanode", skip_serializing_if = "Vec::is_empty")]
    pub datanodes: Vec<DatanodeSpec>,
    /// Coordinators.
    #[serde(default, rename = "coordinator", skip_serializing_if = "Vec::is_empty")]
    pub coordinators: Vec<CoordinatorSpec>,
}

/// A GTM, GTM standby or GTM proxy in the cluster file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Its name (ASCII letters, digits, `_`, `-`, `.`; unique in the cluster).
    pub name: String,
    /// The host it runs on and listens at.
    pub host: String,
    /// The port it listens at.
    pub port: u16,
    /// Its data directory (a proxy keeps only rxc's pid and config files there).
    pub data_dir: PathBuf,
    /// Extra command-line arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Settings written to its `--config` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<toml::Table>,
}

/// A datanode in the cluster file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatanodeSpec {
    /// Its name, as the coordinators register it.
    pub name: String,
    /// The host it runs on and listens at.
    pub host: String,
    /// The port it listens at.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The `[[proxy]]` it reaches the GTM through; default: the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Registered with `PRIMARY` (replicated tables are written here first); one at most.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
    /// Extra command-line arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Settings written to its `--config` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<toml::Table>,
}

/// A coordinator in the cluster file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSpec {
    /// Its name, as the other coordinators register it.
    pub name: String,
    /// The host it runs on and listens at.
    pub host: String,
    /// The port it listens at (for PostgreSQL clients).
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The `[[proxy]]` it reaches the GTM through; default: the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Datanodes this coordinator registers with `PREFERRED` (read first for replicated
    /// tables, e.g. the one on its own host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred: Vec<String>,
    /// Extra command-line arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Settings written to its `--config` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<toml::Table>,
}

/// The fields every component has, borrowed from whichever spec holds them.
pub(super) struct Common<'a> {
    pub(super) kind: Kind,
    /// 1-based position among the components of its kind, for messages about unnamed ones.
    pub(super) position: usize,
    pub(super) name: &'a str,
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) data_dir: &'a Path,
    pub(super) args: &'a [String],
    pub(super) config: Option<&'a toml::Table>,
    pub(super) proxy: Option<&'a str>,
    /// A datanode's `primary`.
    pub(super) primary: bool,
    /// A coordinator's `preferred`.
    pub(super) preferred: &'a [String],
}

impl Common<'_> {
    /// How messages name it: `datanode dn2`, or `datanode #2` (its position among its kind)
    /// without a name.
    pub(super) fn label(&self) -> String {
        if self.name.is_empty() {
            format!("{} #{}", self.kind, self.position)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }
}

/// Every component of the file with its common fields, in start order.
pub(super) fn commons(file: &ClusterFile) -> Vec<Common<'_>> {
    fn server(kind: Kind, position: usize, s: &ServerSpec) -> Common<'_> {
        Common {
            kind,
            position,
            name: &s.name,
            host: &s.host,
            port: s.port,
            data_dir: &s.data_dir,
            args: &s.args,
            config: s.config.as_ref(),
            proxy: None,
            primary: false,
            preferred: &[],
        }
    }
    let mut all = vec![server(Kind::Gtm, 1, &file.gtm)];
    all.extend(
        file.gtm_standby
            .iter()
            .map(|s| server(Kind::GtmStandby, 1, s)),
    );
    all.extend(
        file.proxies
            .iter()
            .enumerate()
            .map(|(i, s)| server(Kind::Proxy, i + 1, s)),
    );
    all.extend(file.datanodes.iter().enumerate().map(|(i, d)| Common {
        kind: Kind::Datanode,
        position: i + 1,
        name: &d.name,
        host: &d.host,
        port: d.port,
        data_dir: &d.data_dir,
        args: &d.args,
        config: d.config.as_ref(),
        proxy: d.proxy.as_deref(),
        primary: d.primary,
        preferred: &[],
    }));
    all.extend(file.coordinators.iter().enumerate().map(|(i, c)| Common {
        kind: Kind::Coordinator,
        position: i + 1,
        name: &c.name,
        host: &c.host,
        port: c.port,
        data_dir: &c.data_dir,
        args: &c.args,
        config: c.config.as_ref(),
        proxy: c.proxy.as_deref(),
        primary: false,
        preferred: &c.preferred,
    }));
    all
}

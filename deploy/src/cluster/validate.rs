//! The checks of a parsed cluster file that serde cannot make, each mistake one message
//! naming the component(s) concerned: names (valid, unique), hosts and ports (valid, no
//! port twice on one host), data directories (non-empty, no `~`, none shared or inside
//! another), references (a `proxy` that is a `[[proxy]]`, `preferred` entries that are
//! datanodes), at least one datanode and one coordinator, at most one primary, and no
//! setting that rxc sets itself (`config.listen`, `args = ["--gtm", ...]`, ...).

use super::file::{commons, ClusterFile, Common};
use super::{address, resolve, Kind};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Keys of a component's `config` table that rxc sets from the cluster file itself.
const OWN_CONFIG_KEYS: &[(&str, &str)] = &[
    ("node_name", "name"),
    ("listen", "host and port"),
    ("data_dir", "data_dir"),
    ("gtm", "the cluster's GTM and proxies"),
    ("standby_of", "[gtm]"),
];

/// Command-line flags that rxc passes itself, refused in `args`.
const OWN_FLAGS: &[&str] = &[
    "--node-name",
    "--listen",
    "--data-dir",
    "--gtm",
    "--config",
    "--standby-of",
];

/// Every mistake in `file` that serde does not catch, one message each; `dir` is the
/// cluster file's directory.
pub fn validate(file: &ClusterFile, dir: &Path) -> Vec<String> {
    let mut mistakes = Vec::new();
    let all = commons(file);
    for c in &all {
        check_fields(c, &mut mistakes);
    }

    let mut by_name: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut by_address: BTreeMap<(&str, u16), Vec<String>> = BTreeMap::new();
    // Data directories are per host: two hosts may use the same path.
    let mut by_dir: BTreeMap<(&str, PathBuf), Vec<String>> = BTreeMap::new();
    for c in all.iter().filter(|c| !c.name.is_empty()) {
        by_name.entry(c.name).or_default().push(c.kind.to_string());
    }
    for c in &all {
        if c.port != 0 && !c.host.is_empty() {
            by_address
                .entry((c.host, c.port))
                .or_default()
                .push(c.label());
        }
        if !c.data_dir.as_os_str().is_empty() {
            by_dir
                .entry((c.host, resolve(dir, c.data_dir)))
                .or_default()
                .push(c.label());
        }
    }
    for (name, kinds) in &by_name {
        if kinds.len() > 1 {
            mistakes.push(format!(
                "duplicate name `{name}`: used by {} components ({})",
                kinds.len(),
                kinds.join(", ")
            ));
        }
    }
    for ((host, port), users) in &by_address {
        if users.len() > 1 {
            mistakes.push(format!(
                "duplicate port {port} on host {host}: {}",
                users.join(" and ")
            ));
        }
    }
    for ((_, path), users) in &by_dir {
        if users.len() > 1 {
            mistakes.push(format!(
                "duplicate data_dir {}: {}",
                path.display(),
                users.join(" and ")
            ));
        }
    }
    for ((outer_host, outer), outer_users) in &by_dir {
        for ((inner_host, inner), inner_users) in &by_dir {
            if inner_host == outer_host && inner != outer && inner.starts_with(outer) {
                mistakes.push(format!(
                    "data_dir {} of {} is inside data_dir {} of {}",
                    inner.display(),
                    inner_users.join(" and "),
                    outer.display(),
                    outer_users.join(" and ")
                ));
            }
        }
    }

    check_references(file, &all, &mut mistakes);

    if file.datanodes.is_empty() {
        mistakes.push("no [[datanode]]: a cluster needs at least one".into());
    }
    if file.coordinators.is_empty() {
        mistakes.push("no [[coordinator]]: a cluster needs at least one".into());
    }
    let primaries: Vec<&str> = file
        .datanodes
        .iter()
        .filter(|d| d.primary)
        .map(|d| d.name.as_str())
        .collect();
    if primaries.len() > 1 {
        mistakes.push(format!(
            "{} datanodes have primary = true ({}): at most one may",
            primaries.len(),
            primaries.join(", ")
        ));
    }
    for (key, path) in [("bin_dir", &file.bin_dir), ("log_dir", &file.log_dir)] {
        if let Some(path) = path {
            check_path(key, path, "", &mut mistakes);
        }
    }
    mistakes
}

/// The checks of one component's own fields.
fn check_fields(c: &Common, mistakes: &mut Vec<String>) {
    let label = c.label();
    if let Err(reason) = rxc_common::config::check_node_name(c.name) {
        mistakes.push(format!("{label}: invalid name `{}`: {reason}", c.name));
    }
    if c.host.is_empty() {
        mistakes.push(format!("{label}: host is empty"));
    } else if let Err(reason) = rxc_common::config::split_host_port(&address(c.host, c.port)) {
        mistakes.push(format!("{label}: invalid host `{}`: {reason}", c.host));
    }
    if c.port == 0 {
        mistakes.push(format!(
            "{label}: port 0 is not allowed: give the port it listens at"
        ));
    }
    check_path("data_dir", c.data_dir, &format!("{label}: "), mistakes);
    if let Some(config) = c.config {
        for (key, source) in OWN_CONFIG_KEYS {
            if config.contains_key(*key) {
                mistakes.push(format!(
                    "{label}: config.{key} is set by rxc (from {source}); remove it"
                ));
            }
        }
    }
    for arg in c.args {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
        if OWN_FLAGS.contains(&flag) {
            mistakes.push(format!(
                "{label}: args: {flag} is set by rxc; remove it (use the component's fields or its config table)"
            ));
        }
    }
}

/// A path setting must be non-empty and must not rely on `~` expansion.
fn check_path(key: &str, path: &Path, prefix: &str, mistakes: &mut Vec<String>) {
    if path.as_os_str().is_empty() {
        mistakes.push(format!("{prefix}{key} is empty"));
    } else if path.starts_with("~") {
        mistakes.push(format!(
            "{prefix}{key} `{}`: `~` is not expanded; write an absolute path or one relative to the cluster file's directory",
            path.display()
        ));
    }
}

/// The names components refer to: proxies and preferred datanodes.
fn check_references(file: &ClusterFile, all: &[Common], mistakes: &mut Vec<String>) {
    let kinds: HashMap<&str, Kind> = all.iter().map(|c| (c.name, c.kind)).collect();
    let proxies: Vec<&str> = file.proxies.iter().map(|p| p.name.as_str()).collect();
    let proxy_list = if proxies.is_empty() {
        "there is none".to_string()
    } else {
        format!("the proxies are: {}", proxies.join(", "))
    };
    for c in all {
        let Some(proxy) = c.proxy else { continue };
        match kinds.get(proxy) {
            Some(Kind::Proxy) => {}
            Some(other) => mistakes.push(format!(
                "{}: proxy `{proxy}` is a {other}, not a [[proxy]] ({proxy_list})",
                c.label()
            )),
            None => mistakes.push(format!(
                "{}: unknown proxy `{proxy}`: no [[proxy]] has that name ({proxy_list})",
                c.label()
            )),
        }
    }
    for c in all {
        for name in c.preferred {
            match kinds.get(name.as_str()) {
                Some(Kind::Datanode) => {}
                Some(other) => mistakes.push(format!(
                    "{}: preferred `{name}` is a {other}, not a datanode",
                    c.label()
                )),
                None => mistakes.push(format!(
                    "{}: preferred `{name}` is not a datanode of this cluster",
                    c.label()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::tests::{error, VALID};

    #[test]
    fn every_mistake_is_named_at_once() {
        let text = VALID
            .replace("port = 15432", "port = 6667")
            .replace("preferred = [\"dn1\"]", "preferred = [\"p1\", \"dn7\"]")
            .replace("name = \"gtm_standby\"", "name = \"dn1\"")
            .replace("data_dir = \"coord1\"", "data_dir = \"~/coord1\"")
            .replace("host = \"localhost\"", "host = \"\"")
            .replace("primary = true", "primary = true\nproxy = \"nope\"")
            .replace("block_cache_mb = 32", "listen = \"x:1\"")
            .replace("\"--log-format\", \"json\"", "\"--gtm=127.0.0.1:1\"");
        let e = error(&text);
        for expected in [
            "9 mistakes",
            "duplicate port 6667 on host 127.0.0.1: gtm proxy p1 and datanode dn1",
            "duplicate name `dn1`: used by 2 components (gtm standby, datanode)",
            "datanode dn1: unknown proxy `nope`: no [[proxy]] has that name (the proxies are: p1)",
            "coordinator coord1: preferred `p1` is a gtm proxy, not a datanode",
            "coordinator coord1: preferred `dn7` is not a datanode of this cluster",
            "coordinator coord1: data_dir `~/coord1`: `~` is not expanded",
            "coordinator coord1: host is empty",
            "datanode dn1: config.listen is set by rxc (from host and port); remove it",
            "coordinator coord1: args: --gtm is set by rxc",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
    }

    #[test]
    fn structural_mistakes() {
        let text = VALID
            .replace("name = \"coord1\"", "name = \"\"")
            .replace("data_dir = \"p1\"", "data_dir = \"gtm/p1\"")
            .replace("port = 5432", "port = 0");
        let e = error(&text);
        for expected in [
            "coordinator #1: invalid name ``: the node name is empty",
            "coordinator #1: port 0 is not allowed",
            "data_dir /etc/rxc/gtm/p1 of gtm proxy p1 is inside data_dir /etc/rxc/gtm of gtm gtm",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        let e = error(
            r#"
            [gtm]
            name = "gtm"
            host = "127.0.0.1"
            port = 6666
            data_dir = "gtm"
            [[datanode]]
            name = "dn1"
            host = "127.0.0.1"
            port = 7001
            data_dir = "dn1"
            primary = true
            [[datanode]]
            name = "dn2"
            host = "127.0.0.1"
            port = 7002
            data_dir = "dn1"
            primary = true
            "#,
        );
        for expected in [
            "no [[coordinator]]",
            "2 datanodes have primary = true (dn1, dn2)",
            "duplicate data_dir /etc/rxc/dn1: datanode dn1 and datanode dn2",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
    }
}

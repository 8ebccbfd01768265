//! `rxc status`: one line per component — name, kind, address, state, pid, role.
//!
//! A component is `running` only when the process in its pid file is alive and its port
//! accepts connections; `not listening` when the process lives but the port is closed
//! (starting, or hung); `stopped` otherwise — `stopped, port taken` when another process
//! holds its port. Components on other hosts are not checked (`remote`).
//!
//! The role of a running GTM is what it says it is (`active` or `standby`: a promoted
//! standby says `active`); a running proxy shows the GTM it follows. Stopped, they show the
//! role the cluster file gives them.

use crate::cluster::{Cluster, Component, Kind};
use crate::process;
use anyhow::Result;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::{Request, Response, ServerStatus};
use std::fmt;
use std::time::Duration;

/// How long asking a GTM or proxy for its role may take.
const ROLE_TIMEOUT: Duration = Duration::from_secs(3);

/// A component's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its process is alive and its port accepts connections.
    Running,
    /// Its process is alive but its port does not accept connections.
    NotListening,
    /// No process of it runs.
    Stopped,
    /// No process of it runs, and another process holds its port.
    StoppedPortTaken,
    /// On another host: not checked.
    Remote,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::NotListening => "not listening",
            State::Stopped => "stopped",
            State::StoppedPortTaken => "stopped, port taken",
            State::Remote => "remote (not checked)",
        })
    }
}

/// One line of the status table.
#[derive(Debug, Clone)]
pub struct Line {
    /// The component's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// `HOST:PORT`.
    pub address: String,
    /// Its state.
    pub state: State,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// Its role (GTMs and proxies), else `-`.
    pub role: String,
}

/// The status of the named component, or of every one.
pub async fn collect(cluster: &Cluster, only: Option<&str>) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for c in cluster.select(only)? {
        let (state, pid) = if !c.is_local() {
            (State::Remote, None)
        } else {
            let pid = process::running_pid(c)?;
            let listening = process::port_open(&c.host, c.port).await;
            let state = match (pid, listening) {
                (Some(_), true) => State::Running,
                (Some(_), false) => State::NotListening,
                (None, false) => State::Stopped,
                (None, true) => State::StoppedPortTaken,
            };
            (state, pid)
        };
        let role = role(c, state == State::Running).await;
        lines.push(Line {
            name: c.name.clone(),
            kind: c.kind,
            address: c.address(),
            state,
            pid,
            role,
        });
    }
    Ok(lines)
}

/// The role column of `c`.
async fn role(c: &Component, running: bool) -> String {
    let configured = match c.kind {
        Kind::Gtm => "active",
        Kind::GtmStandby => "standby",
        Kind::Proxy | Kind::Datanode | Kind::Coordinator => "-",
    };
    if !running || !matches!(c.kind, Kind::Gtm | Kind::GtmStandby | Kind::Proxy) {
        return configured.to_string();
    }
    match server_status(c).await {
        Some(status) if c.kind == Kind::Proxy => match status.upstream {
            Some(upstream) => format!("follows {upstream}"),
            None => "no GTM".to_string(),
        },
        Some(status) => status.role.to_string(),
        None => format!("{configured} (no answer)"),
    }
}

/// What a running GTM or proxy says of itself (`None` if it does not answer in time).
pub async fn server_status(c: &Component) -> Option<ServerStatus> {
    let ask = async {
        let client = GtmClient::connect_admin(&c.address(), ClientOptions::new("rxc status"))
            .await
            .ok()?;
        match client.call(Request::ServerStatus).await.ok()? {
            Response::ServerStatus(status) => Some(status),
            _ => None,
        }
    };
    tokio::time::timeout(ROLE_TIMEOUT, ask).await.ok().flatten()
}

/// The status table, with a header line.
pub fn render(lines: &[Line]) -> String {
    let header = ["NAME", "KIND", "ADDRESS", "STATE", "PID", "ROLE"];
    let rows: Vec<[String; 6]> = lines
        .iter()
        .map(|l| {
            [
                l.name.clone(),
                l.kind.to_string(),
                l.address.clone(),
                l.state.to_string(),
                l.pid.map_or("-".to_string(), |p| p.to_string()),
                l.role.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let format_row = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = format_row(&header.map(String::from));
    for row in &rows {
        out.push('\n');
        out.push_str(&format_row(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned() {
        let lines = [
            Line {
                name: "gtm".into(),
                kind: Kind::Gtm,
                address: "127.0.0.1:6666".into(),
                state: State::Running,
                pid: Some(42),
                role: "active".into(),
            },
            Line {
                name: "dn2".into(),
                kind: Kind::Datanode,
                address: "127.0.0.1:15433".into(),
                state: State::Stopped,
                pid: None,
                role: "-".into(),
            },
        ];
        assert_eq!(
            render(&lines),
            "NAME  KIND      ADDRESS          STATE    PID  ROLE\n\
             gtm   gtm       127.0.0.1:6666   running  42   active\n\
             dn2   datanode  127.0.0.1:15433  stopped  -    -"
        );
    }
}

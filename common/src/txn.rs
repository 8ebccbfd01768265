//! The transaction model every rxc component shares: global transaction ids (GXIDs), snapshots
//! and the visibility rule of the design brief (§3).
//!
//! A GXID is a `u64` handed out by the GTM, strictly increasing, never reused, never wrapping.
//! A snapshot freezes which GXIDs count as finished for a reader:
//!
//! ```text
//!   xmin ............ xmax
//!   |  finished?  |   in progress (xip)  |  not yet started
//!   every GXID < xmin is finished; every GXID >= xmax started after the snapshot;
//!   between them, exactly the GXIDs in `xip` were still running.
//! ```
//!
//! `global_xmin` is the oldest `xmin` any live snapshot in the cluster can still hold: row
//! versions whose deleter committed below it are invisible to every reader and may be removed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A global transaction id. `Gxid(0)` is never handed out and stands for "none".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Gxid(pub u64);

impl Gxid {
    /// The first GXID a fresh GTM hands out. Smaller values are reserved for bootstrap data.
    pub const FIRST: Gxid = Gxid(3);
    /// The GXID stamped on rows written before any transaction existed (bootstrap catalog).
    pub const BOOTSTRAP: Gxid = Gxid(1);

    /// The GXID after this one.
    pub fn next(self) -> Gxid {
        Gxid(self.0 + 1)
    }
}

impl fmt::Display for Gxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A snapshot of the cluster's running transactions, as the GTM hands it out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every GXID below this had finished (committed or aborted) when the snapshot was taken.
    pub xmin: Gxid,
    /// The next GXID not yet handed out when the snapshot was taken.
    pub xmax: Gxid,
    /// GXIDs in `[xmin, xmax)` that were still running, sorted ascending.
    pub xip: Vec<Gxid>,
    /// The oldest `xmin` that any snapshot still held anywhere in the cluster may have.
    pub global_xmin: Gxid,
}

impl Snapshot {
    /// Whether the snapshot counts `gxid` as finished, i.e. its outcome (committed or aborted,
    /// decided by the datanode's local commit status) is what the reader sees.
    pub fn is_finished(&self, gxid: Gxid) -> bool {
        if gxid < self.xmin {
            return true;
        }
        if gxid >= self.xmax {
            return false;
        }
        self.xip.binary_search(&gxid).is_err()
    }

    /// The visibility rule of the design brief: a version created by `creator` is visible to the
    /// reader `own` with this snapshot iff it is the reader's own write, or the snapshot counts
    /// `creator` as finished and `committed(creator)` says it committed on this node.
    pub fn sees(
        &self,
        own: Option<Gxid>,
        creator: Gxid,
        committed: impl FnOnce(Gxid) -> bool,
    ) -> bool {
        if own == Some(creator) {
            return true;
        }
        self.is_finished(creator) && committed(creator)
    }
}

impl Snapshot {
    /// The snapshot in PostgreSQL's `pg_current_snapshot()` text form, `xmin:xmax:xip,...`
    /// (without `global_xmin`): how a coordinator hands it to a datanode.
    pub fn to_text(&self) -> String {
        let xip: Vec<String> = self.xip.iter().map(|g| g.0.to_string()).collect();
        format!("{}:{}:{}", self.xmin.0, self.xmax.0, xip.join(","))
    }

    /// Parses [`Snapshot::to_text`]'s form; `None` if it is malformed or inconsistent
    /// (`xmin <= every xip < xmax`, xip ascending).
    pub fn from_text(text: &str, global_xmin: Gxid) -> Option<Snapshot> {
        let mut parts = text.trim().splitn(3, ':');
        let xmin = Gxid(parts.next()?.parse().ok()?);
        let xmax = Gxid(parts.next()?.parse().ok()?);
        let xip_text = parts.next()?;
        let mut xip = Vec::new();
        for g in xip_text.split(',').filter(|p| !p.is_empty()) {
            xip.push(Gxid(g.trim().parse().ok()?));
        }
        let ascending = xip.windows(2).all(|w| w[0] < w[1]);
        let within = xip.iter().all(|&g| xmin <= g && g < xmax);
        (xmin <= xmax && ascending && within && global_xmin <= xmin).then_some(Snapshot {
            xmin,
            xmax,
            xip,
            global_xmin,
        })
    }
}

/// Isolation levels rxc offers. SERIALIZABLE is refused where it is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Isolation {
    /// A fresh snapshot per statement (the default).
    #[default]
    ReadCommitted,
    /// One snapshot for the whole transaction (snapshot isolation).
    RepeatableRead,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(xmin: u64, xmax: u64, xip: &[u64]) -> Snapshot {
        Snapshot {
            xmin: Gxid(xmin),
            xmax: Gxid(xmax),
            xip: xip.iter().copied().map(Gxid).collect(),
            global_xmin: Gxid(xmin),
        }
    }

    #[test]
    fn finished_follows_xmin_xmax_and_xip() {
        let s = snap(10, 20, &[10, 15]);
        assert!(s.is_finished(Gxid(9)));
        assert!(!s.is_finished(Gxid(10)));
        assert!(s.is_finished(Gxid(11)));
        assert!(!s.is_finished(Gxid(15)));
        assert!(s.is_finished(Gxid(19)));
        assert!(!s.is_finished(Gxid(20)));
        assert!(!s.is_finished(Gxid(99)));
    }

    #[test]
    fn text_form_round_trips_and_rejects_nonsense() {
        let s = snap(10, 20, &[10, 15]);
        assert_eq!(s.to_text(), "10:20:10,15");
        assert_eq!(Snapshot::from_text("10:20:10,15", Gxid(10)), Some(s));
        assert_eq!(
            Snapshot::from_text("7:7:", Gxid(3)).map(|s| s.to_text()),
            Some("7:7:".to_string())
        );
        for bad in [
            "",
            "1:2",
            "x:2:",
            "5:3:",
            "10:20:25",
            "10:20:15,12",
            "10:20:9",
        ] {
            assert_eq!(Snapshot::from_text(bad, Gxid(1)), None, "{bad}");
        }
        assert_eq!(Snapshot::from_text("10:20:", Gxid(11)), None);
    }

    #[test]
    fn sees_own_writes_and_only_committed_finished_ones() {
        let s = snap(10, 20, &[15]);
        assert!(s.sees(Some(Gxid(15)), Gxid(15), |_| false));
        assert!(!s.sees(Some(Gxid(16)), Gxid(15), |_| true));
        assert!(s.sees(None, Gxid(12), |_| true));
        assert!(!s.sees(None, Gxid(12), |_| false));
        assert!(!s.sees(None, Gxid(25), |_| true));
    }
}

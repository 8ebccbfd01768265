//! Golden scripts for the GTM state machine (`tests/scripts/*`): each command applies a
//! request as some client would, and the script records the answers. Rewrite the expected output
//! with `UPDATE_GOLDENFILES=1 cargo test -p rxc-gtm --test state_scripts` and review the diff.
//!
//! Commands (client and session are numbers; `id=N` gives the request id for resend tests):
//!
//! ```text
//! begin CLIENT SESSION [id=N]        snapshot CLIENT SESSION...      release CLIENT SESSION
//! end CLIENT SESSION                 gone CLIENT                     commit GXID | abort GXID
//! status GXID                        prepare GXID GID PARTICIPANT...  decide GID commit|abort
//! forget GID                         list [undecided]
//! seq_create NAME [increment= min= max= start= cache= cycle]         seq_alter NAME [same, restart=]
//! nextval NAME [id=N]                setval NAME VALUE [called=false] seq_get NAME
//! seq_drop NAME                      seq_rename FROM TO
//! lock NAME HOLDER lease=MS          unlock NAME HOLDER              wait MS (the clock moves on)
//! crash                              (restart from the last durable control file)
//! replay                             (a standby built from every command so far must equal us)
//! state                              (next GXID, running set, global xmin)
//! ```

use rxc_common::gtm::proto::{Request, Response, SeqAlterOptions, SeqOptions};
use rxc_common::txn::{Gxid, Isolation};
use rxc_gtm::state::{Command, ControlFile, GtmState};
use std::error::Error;

struct Runner {
    state: GtmState,
    durable: ControlFile,
    next_id: u64,
    now: i64,
    log: Vec<Command>,
    /// The state image a standby would have taken at the start (or last crash).
    image: Vec<u8>,
}

impl Runner {
    fn new() -> Self {
        let state = GtmState::default();
        let durable = state.control_file();
        let image = rxc_common::gtm::proto::encode(&state);
        Runner {
            state,
            durable,
            next_id: 1000,
            now: 1_000_000,
            log: Vec::new(),
            image,
        }
    }

    fn apply(
        &mut self,
        client: u64,
        id: Option<u64>,
        request: Request,
    ) -> Result<Response, String> {
        let id = id.unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id
        });
        self.now += 10;
        let command = Command::Request {
            client,
            id,
            now_us: self.now,
            request,
        };
        let result = self.state.apply(&command);
        self.log.push(command);
        self.persist();
        result.map_err(|e| format!("{} [{}]", e.message, e.code.sqlstate()))
    }

    fn persist(&mut self) {
        if self.state.take_persist_needed() {
            self.durable = self.state.control_file();
        }
    }
}

fn num(s: &str) -> Result<u64, Box<dyn Error>> {
    Ok(s.parse()?)
}

fn show(response: Response) -> String {
    match response {
        Response::Ok => "ok".into(),
        Response::Began { gxid, .. } => format!("gxid={gxid}"),
        Response::Snapshot(s) => format!(
            "xmin={} xmax={} xip={:?} global_xmin={}",
            s.xmin,
            s.xmax,
            s.xip.iter().map(|g| g.0).collect::<Vec<_>>(),
            s.global_xmin
        ),
        Response::Status(s) => format!("{s:?}"),
        Response::Prepared(list) => list
            .iter()
            .map(|t| {
                format!(
                    "{} gxid={} participants={:?} decision={:?}",
                    t.gid, t.gxid, t.participants, t.decision
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Response::SeqRange {
            first,
            count,
            increment,
        } => format!("first={first} count={count} increment={increment}"),
        Response::Sequence(s) => format!(
            "{} last_value={} is_called={} increment={} min={} max={} start={} cache={} cycle={}",
            s.name,
            s.last_value,
            s.is_called,
            s.increment,
            s.min_value,
            s.max_value,
            s.start,
            s.cache,
            s.cycle
        ),
        other => format!("{other:?}"),
    }
}

impl goldenscript::Runner for Runner {
    fn run(&mut self, command: &goldenscript::Command) -> Result<String, Box<dyn Error>> {
        let pos: Vec<&str> = command
            .args
            .iter()
            .filter(|a| a.key.is_none())
            .map(|a| a.value.as_str())
            .collect();
        let key = |k: &str| {
            command
                .args
                .iter()
                .find(|a| a.key.as_deref() == Some(k))
                .map(|a| a.value.clone())
        };
        let key_i64 = |k: &str| -> Result<Option<i64>, Box<dyn Error>> {
            Ok(match key(k) {
                Some(v) => Some(v.parse()?),
                None => None,
            })
        };
        let id = key("id").map(|v| v.parse()).transpose()?;
        let flag = |f: &str| pos.contains(&f);
        let result = match command.name.as_str() {
            "begin" => self.apply(
                num(pos[0])?,
                id,
                Request::Begin {
                    session: num(pos[1])?,
                    isolation: Isolation::ReadCommitted,
                },
            ),
            "snapshot" => {
                let sessions = pos[1..]
                    .iter()
                    .map(|s| num(s))
                    .collect::<Result<Vec<_>, _>>()?;
                self.apply(num(pos[0])?, id, Request::Snapshot { sessions })
            }
            "release" => self.apply(
                num(pos[0])?,
                id,
                Request::ReleaseSnapshot {
                    session: num(pos[1])?,
                },
            ),
            "end" => self.apply(
                num(pos[0])?,
                id,
                Request::EndSession {
                    session: num(pos[1])?,
                },
            ),
            "gone" => {
                let command = Command::ClientGone {
                    client: num(pos[0])?,
                };
                let result = self.state.apply(&command);
                self.log.push(command);
                self.persist();
                result.map_err(|e| e.message)
            }
            "commit" => self.apply(
                0,
                id,
                Request::Commit {
                    gxid: Gxid(num(pos[0])?),
                },
            ),
            "abort" => self.apply(
                0,
                id,
                Request::Abort {
                    gxid: Gxid(num(pos[0])?),
                },
            ),
            "status" => self.apply(
                0,
                id,
                Request::Status {
                    gxid: Gxid(num(pos[0])?),
                },
            ),
            "prepare" => self.apply(
                0,
                id,
                Request::Prepare {
                    gxid: Gxid(num(pos[0])?),
                    gid: pos[1].to_string(),
                    participants: pos[2..].iter().map(|s| s.to_string()).collect(),
                    coordinator: "coord1".into(),
                },
            ),
            "decide" => self.apply(
                0,
                id,
                Request::Decide {
                    gid: pos[0].to_string(),
                    commit: pos[1] == "commit",
                },
            ),
            "forget" => self.apply(
                0,
                id,
                Request::Forget {
                    gid: pos[0].to_string(),
                },
            ),
            "list" => self.apply(
                0,
                id,
                Request::ListPrepared {
                    undecided_only: flag("undecided"),
                },
            ),
            "seq_create" => self.apply(
                0,
                id,
                Request::SeqCreate {
                    name: pos[0].to_string(),
                    options: SeqOptions {
                        increment: key_i64("increment")?,
                        min_value: key_i64("min")?,
                        max_value: key_i64("max")?,
                        start: key_i64("start")?,
                        cache: key_i64("cache")?,
                        cycle: flag("cycle"),
                    },
                },
            ),
            "seq_alter" => self.apply(
                0,
                id,
                Request::SeqAlter {
                    name: pos[0].to_string(),
                    options: SeqAlterOptions {
                        increment: key_i64("increment")?,
                        min_value: key_i64("min")?.map(Some),
                        max_value: key_i64("max")?.map(Some),
                        start: key_i64("start")?,
                        restart: key_i64("restart")?.map(Some),
                        cache: key_i64("cache")?,
                        cycle: if flag("cycle") {
                            Some(true)
                        } else if flag("nocycle") {
                            Some(false)
                        } else {
                            None
                        },
                    },
                },
            ),
            "nextval" => self.apply(
                0,
                id,
                Request::SeqNext {
                    name: pos[0].to_string(),
                },
            ),
            "setval" => self.apply(
                0,
                id,
                Request::SeqSet {
                    name: pos[0].to_string(),
                    value: pos[1].parse()?,
                    is_called: key("called").as_deref() != Some("false"),
                },
            ),
            "seq_get" => self.apply(
                0,
                id,
                Request::SeqGet {
                    name: pos[0].to_string(),
                },
            ),
            "seq_drop" => self.apply(
                0,
                id,
                Request::SeqDrop {
                    name: pos[0].to_string(),
                    if_exists: flag("if_exists"),
                },
            ),
            "seq_rename" => self.apply(
                0,
                id,
                Request::SeqRename {
                    from: pos[0].to_string(),
                    to: pos[1].to_string(),
                },
            ),
            "lock" => self.apply(
                0,
                id,
                Request::Lock {
                    name: pos[0].to_string(),
                    holder: pos[1].to_string(),
                    lease_ms: key_i64("lease")?.unwrap_or(1000) as u64,
                },
            ),
            "unlock" => self.apply(
                0,
                id,
                Request::Unlock {
                    name: pos[0].to_string(),
                    holder: pos[1].to_string(),
                },
            ),
            "wait" => {
                self.now += num(pos[0])? as i64 * 1000;
                return Ok(format!("clock +{}ms", pos[0]));
            }
            "crash" => {
                self.state = GtmState::from_control(&self.durable);
                self.image = rxc_common::gtm::proto::encode(&self.state);
                self.log.clear();
                return Ok(format!("restarted at next_gxid={}", self.state.next_gxid()));
            }
            "replay" => {
                // A standby that took the state image at the start (or at the last crash) and
                // applied every command since must be in the same state as the active.
                let mut standby: GtmState = rxc_common::gtm::proto::decode(&self.image)?;
                for c in &self.log {
                    let _ = standby.apply(c);
                }
                let view = |s: &GtmState| {
                    let statuses: Vec<_> = (0..s.next_gxid().0 + 2)
                        .map(|g| s.status(Gxid(g)))
                        .collect();
                    (
                        s.control_file(),
                        s.next_gxid(),
                        s.running_count(),
                        s.global_xmin(),
                        s.session_count(),
                        statuses,
                    )
                };
                return Ok(format!(
                    "standby equal: {}",
                    view(&standby) == view(&self.state)
                ));
            }
            "state" => {
                return Ok(format!(
                    "next_gxid={} running={} global_xmin={} sessions={}",
                    self.state.next_gxid(),
                    self.state.running_count(),
                    self.state.global_xmin(),
                    self.state.session_count()
                ))
            }
            name => return Err(format!("unknown command {name}").into()),
        };
        match result {
            Ok(r) => Ok(show(r)),
            Err(e) => Err(e.into()),
        }
    }
}

#[test]
fn state_scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    for path in rxc_tests::script_files(&dir) {
        goldenscript::run(&mut Runner::new(), &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

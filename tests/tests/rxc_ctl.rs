//! The cluster control tool `rxc` end to end: a malformed cluster file is refused with its
//! mistakes named; `rxc init`, `status`, `stop NAME`, `start`, `stop` and `psql` on a real
//! cluster (a GTM with its standby, a proxy, two datanodes, a coordinator) on ephemeral
//! ports; `init` over existing data is refused; `rxc up` runs a two-coordinator cluster in
//! the foreground, stops on SIGTERM, and a second `rxc up` on the same directory finds the
//! data again.
//!
//! Every test stops what it started even when an assertion fails: a [`Stopper`] runs
//! `rxc stop --mode immediate` on drop (and shows the components' logs on a failure).

use rxc_tests::sql::{connect_to, rows, table};
use rxc_tests::{bin, free_port, Process, TempDir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `rxc ARGS`; returns (exit code, stdout, stderr).
fn rxc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("rxc"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run rxc {args:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `rxc ARGS`, which must succeed; returns its stdout.
fn rxc_ok(args: &[&str]) -> String {
    let (code, out, err) = rxc(args);
    assert_eq!(code, 0, "rxc {args:?} failed:\n{out}\n{err}");
    out
}

/// Stops the cluster of a cluster file when dropped (`rxc stop --mode immediate`), showing
/// the components' logs first if the test is failing.
struct Stopper {
    file: PathBuf,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        let file = self.file.to_string_lossy().into_owned();
        if std::thread::panicking() {
            let dir = self.file.parent().expect("cluster file directory");
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let log = std::fs::read_to_string(&path).unwrap_or_default();
                    eprintln!("----- {} -----\n{log}", path.display());
                }
            }
        }
        let _ = Command::new(bin("rxc"))
            .args(["stop", "--mode", "immediate", "-c", &file])
            .output();
    }
}

/// A cluster file on free ports: a GTM (and its standby if `standby`), a proxy, datanodes
/// `dn1` (primary) and `dn2`, coordinator `coord1`; data directories relative to the file.
fn cluster_file(standby: bool) -> String {
    let mut text = format!(
        "[gtm]\nname = \"gtm\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"gtm\"\n\n",
        free_port()
    );
    if standby {
        text.push_str(&format!(
            "[gtm_standby]\nname = \"gtm_standby\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"gtm_standby\"\n\n",
            free_port()
        ));
    }
    text.push_str(&format!(
        "[[proxy]]\nname = \"gtm_proxy\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"gtm_proxy\"\n\n",
        free_port()
    ));
    for (name, extra) in [("dn1", "primary = true\n"), ("dn2", "")] {
        text.push_str(&format!(
            "[[datanode]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"{name}\"\n{extra}\n",
            free_port()
        ));
    }
    text.push_str(&format!(
        "[[coordinator]]\nname = \"coord1\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"coord1\"\n",
        free_port()
    ));
    text
}

/// The port given to component `name` in a cluster file written by [`cluster_file`].
fn port_of(text: &str, name: &str) -> u16 {
    let at = text
        .find(&format!("name = \"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in the cluster file"));
    let rest = &text[at..];
    let port = rest.find("port = ").expect("a port") + "port = ".len();
    rest[port..]
        .lines()
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("a port number")
}

/// `rxc status` output as one map per component, keyed by the header's column names (the
/// columns are cut at the header's offsets: a kind may contain a space).
fn status_table(out: &str) -> Vec<HashMap<String, String>> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    let columns: Vec<(usize, &str)> = header
        .match_indices(|c: char| c.is_ascii_uppercase())
        .filter(|(i, _)| *i == 0 || header.as_bytes()[i - 1] == b' ')
        .map(|(i, _)| (i, header[i..].split(' ').next().unwrap_or_default()))
        .collect();
    lines
        .map(|line| {
            columns
                .iter()
                .enumerate()
                .map(|(n, (start, name))| {
                    let end = columns.get(n + 1).map_or(line.len(), |(e, _)| *e);
                    let cell = line.get(*start..end.min(line.len())).unwrap_or_default();
                    (name.to_string(), cell.trim().to_string())
                })
                .collect()
        })
        .collect()
}

/// Each component's state in `rxc status` output, by name.
fn states(out: &str) -> HashMap<String, String> {
    status_table(out)
        .into_iter()
        .map(|row| (row["NAME"].clone(), row["STATE"].clone()))
        .collect()
}

fn conninfo(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")
}

fn port_closed(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Whether process `pid` still exists (and is not a zombie).
fn process_alive(pid: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[test]
fn malformed_cluster_files_are_refused_naming_the_mistake() {
    let dir = TempDir::new("rxc-ctl-malformed");
    let good = cluster_file(false);
    let dn1_port = port_of(&good, "dn1");
    let dn2_port = port_of(&good, "dn2");
    let cases = [
        (
            "duplicate port",
            good.replace(
                &format!("port = {dn2_port}\n"),
                &format!("port = {dn1_port}\n"),
            ),
            format!("duplicate port {dn1_port} on host 127.0.0.1: datanode dn1 and datanode dn2"),
        ),
        (
            "unknown proxy",
            good.replace(
                "data_dir = \"coord1\"",
                "data_dir = \"coord1\"\nproxy = \"proxy9\"",
            ),
            "coordinator coord1: unknown proxy `proxy9`: no [[proxy]] has that name (the proxies are: gtm_proxy)"
                .to_string(),
        ),
        (
            "unknown key",
            good.replace("primary = true", "primray = true"),
            "unknown field `primray`".to_string(),
        ),
    ];
    for (what, text, expected) in cases {
        let file = dir.join("cluster.toml");
        std::fs::write(&file, &text).unwrap();
        let (code, out, err) = rxc(&["init", "-c", &file.to_string_lossy()]);
        assert_eq!(code, 1, "{what}: rxc init should fail:\n{out}\n{err}");
        assert!(
            err.contains(&expected),
            "{what}: expected {expected:?} in:\n{err}"
        );
        assert!(
            err.contains(&format!("cluster file {}", file.display())),
            "{what}: the message names the file:\n{err}"
        );
        assert!(
            !dir.join("gtm").exists(),
            "{what}: nothing may be created before the file is valid"
        );
    }

    // A remote host passes validation (status shows it unchecked) but is never started.
    let file = dir.join("cluster.toml");
    let remote = good.replacen(
        "host = \"127.0.0.1\"\nport",
        "host = \"db7.example.invalid\"\nport",
        1,
    );
    std::fs::write(&file, remote).unwrap();
    let file = file.to_string_lossy().into_owned();
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(states(&out)["gtm"], "remote (not checked)", "{out}");
    let (code, _, err) = rxc(&["init", "-c", &file]);
    assert_eq!(code, 1);
    assert!(
        err.contains("remote hosts (ssh) are not supported yet: gtm gtm on db7.example.invalid"),
        "{err}"
    );
    assert!(!dir.join("gtm").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_stop_start_and_sql() {
    let dir = TempDir::new("rxc-ctl-init");
    let text = cluster_file(true);
    let file = dir.join("cluster.toml");
    std::fs::write(&file, &text).unwrap();
    let _stopper = Stopper { file: file.clone() };
    let file = file.to_string_lossy().into_owned();

    let out = rxc_ok(&["init", "-c", &file]);
    assert!(
        out.contains("coord1: CREATE NODE \"dn1\" WITH (TYPE = 'datanode', HOST = '127.0.0.1'"),
        "{out}"
    );
    let (code, out, err) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 0, "all running:\n{out}\n{err}");
    let table_rows = status_table(&out);
    assert_eq!(table_rows.len(), 6, "{out}");
    assert!(table_rows.iter().all(|r| r["STATE"] == "running"), "{out}");
    let roles: HashMap<&str, &str> = table_rows
        .iter()
        .map(|r| (r["NAME"].as_str(), r["ROLE"].as_str()))
        .collect();
    assert_eq!(roles["gtm"], "active", "{out}");
    assert_eq!(roles["gtm_standby"], "standby", "{out}");
    let pids: Vec<String> = table_rows.iter().map(|r| r["PID"].clone()).collect();

    // A table created with the coordinator's defaults is hash-distributed over both datanodes.
    let coord = conninfo(port_of(&text, "coord1"));
    let c = connect_to(&coord).await;
    c.batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text)")
        .await
        .unwrap();
    let values: Vec<String> = (1..=20).map(|i| format!("({i}, 'o{i}')")).collect();
    c.batch_execute(&format!(
        "INSERT INTO accounts VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT pclocatortype, nodeoids FROM pgxc_class WHERE pcrelid = 'accounts'"
        )
        .await,
        table(&[&["H", "dn1 dn2"]])
    );
    let on_dn1 = rows(
        &c,
        "EXECUTE DIRECT ON (dn1) 'SELECT count(*) FROM accounts'",
    )
    .await;
    let on_dn2 = rows(
        &c,
        "EXECUTE DIRECT ON (dn2) 'SELECT count(*) FROM accounts'",
    )
    .await;
    let (n1, n2): (i64, i64) = (on_dn1[0][0].parse().unwrap(), on_dn2[0][0].parse().unwrap());
    assert!(
        n1 > 0 && n2 > 0 && n1 + n2 == 20,
        "rows on both: {n1} + {n2}"
    );
    assert_eq!(
        rows(&c, "SELECT count(*), sum(id) FROM accounts").await,
        table(&[&["20", "210"]])
    );
    drop(c);

    // `rxc psql` reaches the first coordinator.
    let out = rxc_ok(&[
        "psql",
        "-c",
        &file,
        "--",
        "-X",
        "-A",
        "-t",
        "-c",
        "SELECT count(*) FROM accounts",
    ]);
    assert_eq!(out.trim(), "20");

    // Stop one datanode: status says so (and exits 3); start brings it back.
    let out = rxc_ok(&["stop", "-c", &file, "dn2"]);
    assert!(out.contains("stopped datanode dn2"), "{out}");
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 3, "{out}");
    let now = states(&out);
    assert_eq!(now["dn2"], "stopped", "{out}");
    assert!(
        now.iter()
            .all(|(name, state)| name == "dn2" || state == "running"),
        "{out}"
    );
    let out = rxc_ok(&["start", "-c", &file]);
    assert!(out.contains("gtm gtm is running already"), "{out}");
    assert!(out.contains("started datanode dn2"), "{out}");
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 0, "{out}");
    let c = connect_to(&coord).await;
    assert_eq!(
        rows(&c, "SELECT count(*) FROM accounts").await,
        table(&[&["20"]])
    );
    drop(c);

    // Stop everything: no process is left, no port open.
    rxc_ok(&["stop", "-c", &file]);
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 3, "{out}");
    assert!(states(&out).values().all(|s| s == "stopped"), "{out}");
    for pid in &pids {
        assert!(!process_alive(pid), "process {pid} is still there");
    }
    for name in ["gtm", "gtm_standby", "gtm_proxy", "dn1", "dn2", "coord1"] {
        assert!(port_closed(port_of(&text, name)), "{name}'s port is open");
    }
}

#[test]
fn init_refuses_a_non_empty_data_directory() {
    let dir = TempDir::new("rxc-ctl-refuse");
    let text = cluster_file(false);
    let file = dir.join("cluster.toml");
    std::fs::write(&file, &text).unwrap();
    let _stopper = Stopper { file: file.clone() };
    std::fs::create_dir_all(dir.join("dn2")).unwrap();
    std::fs::write(dir.join("dn2").join("precious"), "data").unwrap();

    let (code, out, err) = rxc(&["init", "-c", &file.to_string_lossy()]);
    assert_eq!(code, 1, "{out}\n{err}");
    let expected = format!(
        "datanode dn2: data directory {} exists and is not empty",
        dir.join("dn2").display()
    );
    assert!(err.contains(&expected), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("dn2").join("precious")).unwrap(),
        "data"
    );
    assert!(!dir.join("gtm").exists(), "nothing is created or started");
    assert!(port_closed(port_of(&text, "gtm")));
}

/// `rxc up --dir DIR` started as a process, stdout and stderr in `log`.
fn start_up(dir: &Path, log: PathBuf) -> Process {
    let mut command = Command::new(bin("rxc"));
    command.arg("up").arg("--dir").arg(dir);
    Process::spawn("rxc up", command, log)
}

/// Waits until `rxc up` printed its banner; returns the coordinator URLs.
fn banner_urls(up: &mut Process) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = up.log();
        if out.contains("Ctrl-C stops the cluster") {
            return out
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("postgres://"))
                .map(String::from)
                .collect();
        }
        assert!(up.is_running(), "rxc up exited:\n{out}");
        assert!(Instant::now() < deadline, "no banner after 60 s:\n{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The port of a `postgres://postgres@127.0.0.1:PORT/postgres` URL.
fn url_port(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_a_cluster_until_sigterm_and_again_on_its_data() {
    let dir = TempDir::new("rxc-ctl-up");
    let cluster_dir = dir.join("cluster");
    let _stopper = Stopper {
        file: cluster_dir.join("cluster.toml"),
    };

    let mut up = start_up(&cluster_dir, dir.join("up1.out"));
    let urls = banner_urls(&mut up);
    assert_eq!(urls.len(), 2, "one URL per coordinator:\n{}", up.log());
    let c1 = connect_to(&urls[0]).await;
    let c2 = connect_to(&urls[1]).await;
    c1.batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        .await
        .unwrap();
    c1.batch_execute("INSERT INTO notes VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        .await
        .unwrap();
    assert_eq!(
        rows(&c2, "SELECT body FROM notes ORDER BY id").await,
        table(&[&["one"], &["two"], &["three"]])
    );
    drop((c1, c2));

    // From another terminal, `rxc status` sees the cluster `rxc up` runs.
    let file = cluster_dir
        .join("cluster.toml")
        .to_string_lossy()
        .into_owned();
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 0, "{out}");

    let status = up.terminate(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "rxc up exits 0 on SIGTERM ({status:?}):\n{}",
        up.log()
    );
    for url in &urls {
        assert!(
            port_closed(url_port(url)),
            "{url} still accepts connections"
        );
    }
    let (code, out, _) = rxc(&["status", "-c", &file]);
    assert_eq!(code, 3, "{out}");
    assert!(states(&out).values().all(|s| s == "stopped"), "{out}");

    // Again on the same directory: the same ports, the same data.
    let mut up = start_up(&cluster_dir, dir.join("up2.out"));
    assert_eq!(banner_urls(&mut up), urls);
    let c2 = connect_to(&urls[1]).await;
    assert_eq!(
        rows(&c2, "SELECT count(*) FROM notes").await,
        table(&[&["3"]])
    );
    drop(c2);
    let status = up.terminate(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "{}", up.log());
}

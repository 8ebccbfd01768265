#!/usr/bin/env bash
# One datanode against PostgreSQL 15 on this machine, side by side in one run, with pgbench
# custom scripts (TPC-B needs COPY for `pgbench -i`, which the datanode lacks yet):
#   point-select  SELECT v FROM kv WHERE k = :k           (read-only, autocommit)
#   point-insert  INSERT INTO log VALUES (:id, :k, 'x')    (a durable commit each)
# each with 8 clients, -M simple and -M prepared. Builds nothing: run
# `cargo build --release -p rxc-gtm -p rxc-datanode` first. Needs initdb/pg_ctl (PostgreSQL 15).
#
#   deploy/bench/datanode-bench.sh [SECONDS]     (default 10 s per run)
#
# Last line: result: <workload>_<mode>_rxc_tps=<f> <workload>_<mode>_pg_tps=<f> ... failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${RXC_BIN:-target/release}
seconds=${1:-10}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
for b in rxc-gtm rxc-datanode; do
    [[ -x $bin/$b ]] || { echo "datanode-bench: $bin/$b not built" >&2; exit 1; }
done
work=$(mktemp -d)
chmod 777 "$work"
pids=()
cleanup() {
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    su postgres -c "$pgbin/pg_ctl -D $work/pg stop -m immediate" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }

gtm_port=$(free_port); dn_port=$(free_port); pg_port=$(free_port)
RUST_LOG=warn "$bin/rxc-gtm" --data-dir "$work/gtm" --listen "127.0.0.1:$gtm_port" 2>"$work/gtm.log" &
pids+=($!)
wait_port "$gtm_port"
RUST_LOG=warn "$bin/rxc-datanode" --node-name dn1 --data-dir "$work/dn1" \
    --listen "127.0.0.1:$dn_port" --gtm "127.0.0.1:$gtm_port" 2>"$work/dn1.log" &
pids+=($!)
wait_port "$dn_port"
# PostgreSQL with durable commits (fsync on, synchronous_commit on), as the datanode.
su postgres -c "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $work/pg -o '-p $pg_port -k $work -c listen_addresses=127.0.0.1' -l $work/pg.log start" >/dev/null
wait_port "$pg_port"

cat >"$work/setup.sql" <<'SQL'
DROP TABLE IF EXISTS kv;
DROP TABLE IF EXISTS log;
CREATE TABLE kv (k integer PRIMARY KEY, v integer);
CREATE TABLE log (id bigint PRIMARY KEY, k integer, note text);
SQL
cat >"$work/fill.sql" <<'SQL'
\set k random(1, 1000000000)
INSERT INTO kv VALUES (:client_id * 100000 + :k % 100000, :k) ON CONFLICT DO NOTHING;
SQL
cat >"$work/select.sql" <<'SQL'
\set k random(0, 799999)
SELECT v FROM kv WHERE k = :k;
SQL
cat >"$work/insert.sql" <<'SQL'
\set k random(1, 1000000)
\set r random(0, 999)
INSERT INTO log VALUES (:client_id * 1000000000 + :k * 1000 + :r, :k, 'x') ON CONFLICT DO NOTHING;
SQL
summary=()
failed=0
printf '%-14s %-9s %12s %12s %7s\n' workload mode rxc_tps pg_tps ratio
for target in rxc pg; do
    port=$dn_port; [[ $target == pg ]] && port=$pg_port
    psql -X -q -o /dev/null -h 127.0.0.1 -p "$port" -U postgres -d postgres -f "$work/setup.sql" >/dev/null 2>&1
    pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c 8 -j 2 -t 2500 -f "$work/fill.sql" postgres >/dev/null 2>&1
done
declare -A tps
for workload in select insert; do
    for mode in simple prepared; do
        for target in rxc pg; do
            port=$dn_port; [[ $target == pg ]] && port=$pg_port
            out=$(pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c 8 -j 2 -T "$seconds" -M "$mode" \
                -f "$work/$workload.sql" postgres 2>&1) || true
            t=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
            f=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
            [[ -n $t ]] || { echo "$out" | tail -5 >&2; t=0; }
            failed=$((failed + ${f:-0}))
            tps[$target]=$t
            summary+=("${workload}_${mode}_${target}_tps=$t")
        done
        ratio=$(python3 -c "print(f'{${tps[rxc]} / max(${tps[pg]}, 1e-9):.2f}')")
        printf '%-14s %-9s %12s %12s %7s\n' "point-$workload" "$mode" "${tps[rxc]}" "${tps[pg]}" "$ratio"
    done
done
echo "result: ${summary[*]} failed=$failed"

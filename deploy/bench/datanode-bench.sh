#!/usr/bin/env bash
# One datanode against PostgreSQL 15 on this machine, side by side in one run, with pgbench
# custom scripts (TPC-B is deploy/bench/datanode-tpcb.sh):
#   point-select  SELECT v FROM kv WHERE k = :k           (read-only, autocommit)
#   point-insert  INSERT INTO log VALUES (:id, :k, 'x')    (a durable commit each)
# each with 8 clients, -M simple and -M prepared. Builds nothing: run
# `cargo build --release --workspace` first. Needs initdb/pg_ctl (PostgreSQL 15).
#
#   deploy/bench/datanode-bench.sh [SECONDS]     (default 10 s per run)
#
# Last line: result: <workload>_<mode>_rxc_tps=<f> <workload>_<mode>_pg_tps=<f> ... failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=${1:-10}
bench=datanode-bench
# shellcheck source=lib/datanode-and-postgres.sh
source deploy/bench/lib/datanode-and-postgres.sh

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

#!/usr/bin/env bash
# pgbench TPC-B against one rxc datanode and against PostgreSQL 15, side by side in one run on
# this machine: `pgbench -i -s SCALE` on both, then the built-in TPC-B script with 8 clients for
# SECONDS seconds in -M simple and -M prepared, rxc and PostgreSQL alternating. Both commit
# durably (PostgreSQL: fsync on, synchronous_commit on; rxc: a synced RocksDB write batch per
# commit, group commit). Builds nothing: run `cargo build --release --workspace` first.
#
#   deploy/bench/datanode-tpcb.sh [SECONDS] [SCALE]     (defaults 30 s, scale 10)
#
# Last line: result: tpcb_simple_tps=<f> tpcb_simple_pg_tps=<f> tpcb_simple_ratio=<f>
#                    tpcb_prepared_tps=<f> tpcb_prepared_pg_tps=<f> tpcb_prepared_ratio=<f> failed=<int>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
duration=${1:-30}
scale=${2:-10}
clients=${RXC_BENCH_CLIENTS:-8}
bench=datanode-tpcb
# shellcheck source=lib/datanode-and-postgres.sh
source deploy/bench/lib/datanode-and-postgres.sh

port_of() { if [[ $1 == pg ]]; then echo "$pg_port"; else echo "$dn_port"; fi; }
for target in rxc pg; do
    start=$SECONDS
    pgbench -i -s "$scale" -q -h 127.0.0.1 -p "$(port_of $target)" -U postgres postgres \
        >"$work/init-$target.log" 2>&1 || { cat "$work/init-$target.log" >&2; exit 1; }
    echo "pgbench -i -s $scale on $target: $((SECONDS - start)) s"
done

summary=()
failed=0
declare -A tps
printf '\n%-10s %-9s %12s %12s %7s\n' workload mode rxc_tps pg_tps ratio
for mode in simple prepared; do
    for target in rxc pg; do
        out=$(pgbench -n -h 127.0.0.1 -p "$(port_of $target)" -U postgres -c "$clients" -j 2 \
            -T "$duration" -M "$mode" postgres 2>&1) || true
        t=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
        f=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
        [[ -n $t ]] || { echo "$out" | tail -5 >&2; t=0; }
        failed=$((failed + ${f:-0}))
        tps[$target]=$t
    done
    ratio=$(python3 -c "print(f'{${tps[rxc]} / max(${tps[pg]}, 1e-9):.2f}')")
    printf '%-10s %-9s %12s %12s %7s\n' tpcb "$mode" "${tps[rxc]}" "${tps[pg]}" "$ratio"
    summary+=("tpcb_${mode}_tps=${tps[rxc]}" "tpcb_${mode}_pg_tps=${tps[pg]}" "tpcb_${mode}_ratio=$ratio")
done
# The books must balance on rxc: every transaction moved the same delta three ways.
check=$(psql -X -A -t -h 127.0.0.1 -p "$dn_port" -U postgres -d postgres -c \
    "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
        AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
        AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
echo "rxc balances consistent: $check"
[[ $check == t ]] || failed=$((failed + 1))
echo "result: ${summary[*]} failed=$failed"

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
bin=${RXC_BIN:-target/release}
duration=${1:-30}
scale=${2:-10}
clients=${RXC_BENCH_CLIENTS:-8}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
for b in rxc-gtm rxc-datanode; do
    [[ -x $bin/$b ]] || { echo "datanode-tpcb: $bin/$b not built" >&2; exit 1; }
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
su postgres -c "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $work/pg -o '-p $pg_port -k $work -c listen_addresses=127.0.0.1' -l $work/pg.log start" >/dev/null
wait_port "$pg_port"

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

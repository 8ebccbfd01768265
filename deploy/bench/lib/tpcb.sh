# Sourced by the TPC-B benchmarks, after lib/datanode-and-postgres.sh: `pgbench -i -s $scale`
# on rxc (at $rxc_port: a datanode or a coordinator) and on PostgreSQL, then the built-in TPC-B
# script with $clients clients for $duration seconds in -M simple and -M prepared, rxc and
# PostgreSQL alternating; checks that rxc's balances add up and prints the result line.
# shellcheck source=pgbench.sh
source "$(dirname "${BASH_SOURCE[0]}")/pgbench.sh"
pgbench_init_both

summary=()
failed=0
declare -A tps
printf '\n%-10s %-9s %12s %12s %7s\n' workload mode rxc_tps pg_tps ratio
for mode in simple prepared; do
    for target in rxc pg; do
        run_pgbench "$target" -M "$mode"
        failed=$((failed + run_failed))
        tps[$target]=$run_tps
    done
    ratio=$(python3 -c "print(f'{${tps[rxc]} / max(${tps[pg]}, 1e-9):.2f}')")
    printf '%-10s %-9s %12s %12s %7s\n' tpcb "$mode" "${tps[rxc]}" "${tps[pg]}" "$ratio"
    summary+=("tpcb_${mode}_tps=${tps[rxc]}" "tpcb_${mode}_pg_tps=${tps[pg]}" "tpcb_${mode}_ratio=$ratio")
done
# The books must balance on rxc (through a coordinator: read in one snapshot over every
# datanode): every transaction moved the same delta three ways.
check=$(psql -X -A -t -h 127.0.0.1 -p "$rxc_port" -U postgres -d postgres -c \
    "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
        AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
        AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
echo "rxc balances consistent: $check"
[[ $check == t ]] || failed=$((failed + 1))
echo "result: ${summary[*]} failed=$failed"

# Sourced by the TPC-B benchmarks, after lib/datanode-and-postgres.sh: `pgbench -i -s $scale`
# on rxc (at $rxc_port: a datanode or a coordinator) and on PostgreSQL, then the built-in TPC-B
# script with $clients clients for $duration seconds in -M simple and -M prepared, rxc and
# PostgreSQL alternating; checks that rxc's balances add up and prints the result line.
port_of() { if [[ $1 == pg ]]; then echo "$pg_port"; else echo "$rxc_port"; fi; }
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
# The books must balance on rxc (through a coordinator: read in one snapshot over every
# datanode): every transaction moved the same delta three ways.
check=$(psql -X -A -t -h 127.0.0.1 -p "$rxc_port" -U postgres -d postgres -c \
    "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
        AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
        AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
echo "rxc balances consistent: $check"
[[ $check == t ]] || failed=$((failed + 1))
echo "result: ${summary[*]} failed=$failed"

# Sourced by the pgbench benchmarks: pgbench on rxc (at $rxc_port: a datanode or a coordinator)
# and on PostgreSQL (at $pg_port). Needs $work, $scale, $clients and $duration.
port_of() { if [[ $1 == pg ]]; then echo "$pg_port"; else echo "$rxc_port"; fi; }

# `pgbench -i -s $scale` on rxc, then on PostgreSQL, with the time each took.
pgbench_init_both() {
    local target start
    for target in rxc pg; do
        start=$SECONDS
        pgbench -i -s "$scale" -q -h 127.0.0.1 -p "$(port_of "$target")" -U postgres postgres \
            >"$work/init-$target.log" 2>&1 || { cat "$work/init-$target.log" >&2; exit 1; }
        echo "pgbench -i -s $scale on $target: $((SECONDS - start)) s"
    done
}

# run_pgbench TARGET PGBENCH-ARGS...: $clients clients for $duration s; sets $run_tps and
# $run_failed (a run that reports no tps counts as failed).
run_pgbench() {
    local target=$1 out
    shift
    out=$(pgbench -n -h 127.0.0.1 -p "$(port_of "$target")" -U postgres -c "$clients" -j 2 \
        -T "$duration" "$@" postgres 2>&1) || true
    run_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    run_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
    if [[ -z $run_tps ]]; then
        echo "$out" | tail -5 >&2
        run_tps=0
        run_failed=${run_failed:-1}
    fi
    run_failed=${run_failed:-0}
}

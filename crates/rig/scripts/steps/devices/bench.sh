# Step devices, benchmark: create and destroy of the Linux guest with one disk (an image
# file) and one vif, timed for each tool, the tools taking turns, with spare attempts for
# runs that fail; after each destroy, what is left of the domain is listed. rxl's creates
# run with --times: their per-step profile is printed as P lines.
# Set by the rig: BENCH_TOOLS (LABEL:CMD:HOTPLUG words), CFG_DIR, DEV_DIR, BENCH_RUNS,
# BENCH_SPARE, BENCH_CMD_S, SETTLE_S. RXL_SETTLE_S, when set, overrides SETTLE_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
one() { # LABEL CMD HOTPLUG ATTEMPT
    name=bench-$1
    use_hotplug "$3"
    note "bench run $4 of $1"
    times=
    case "$2" in *rxl) times=--times ;; esac
    t0=$(now_ms)
    # shellcheck disable=SC2086 # $times is one word or none
    timeout "${BENCH_CMD_S}" "$2" create $times "${CFG_DIR}/bench-$1.cfg" >/tmp/bench.out 2>&1 || {
        echo "run $4 of $1: create failed: $(tail -n 2 /tmp/bench.out | tr '\n' ' ')"
        return 3
    }
    t1=$(now_ms)
    [ -n "$times" ] && sed -n "/^step /,/^total /s/^/P tool=$1 run=$4 | /p" /tmp/bench.out
    domid=$(xl domid "$name" 2>/dev/null)
    timeout "${BENCH_CMD_S}" "$2" destroy "$name" >/tmp/bench.out 2>&1 || {
        echo "run $4 of $1: destroy failed: $(tail -n 2 /tmp/bench.out | tr '\n' ' ')"
        return 3
    }
    t2=$(now_ms)
    echo "T tool=$1 run=$4 create_ms=$((t1 - t0)) destroy_ms=$((t2 - t1))"
    [ -n "$domid" ] && leftovers "$domid" "${DEV_DIR}/bench.img" | sed "s/^/LEFT $1 run $4: /"
    # Untimed: let Xen finish tearing the domain down before the next create.
    sleep "${RXL_SETTLE_S:-$SETTLE_S}"
}
for tool in ${BENCH_TOOLS}; do
    echo 0 >"/tmp/bench-ok-${tool%%:*}"
done
for attempt in $(seq 1 $((BENCH_RUNS + BENCH_SPARE))); do
    for tool in ${BENCH_TOOLS}; do
        label=${tool%%:*}
        rest=${tool#*:}
        ok=$(cat "/tmp/bench-ok-$label")
        [ "$ok" -ge "${BENCH_RUNS}" ] && continue
        if one "$label" "${rest%%:*}" "${rest#*:}" "$attempt"; then
            echo $((ok + 1)) >"/tmp/bench-ok-$label"
        else
            echo "RETRY $label after attempt $attempt"
            timeout 60 "${rest%%:*}" destroy "bench-$label" >/dev/null 2>&1
            timeout 60 xl destroy "bench-$label" >/dev/null 2>&1
        fi
    done
done
use_hotplug scripts
for tool in ${BENCH_TOOLS}; do
    label=${tool%%:*}
    ok=$(cat "/tmp/bench-ok-$label")
    [ "$ok" -lt "${BENCH_RUNS}" ] && echo "FAILED $label: $ok good runs of ${BENCH_RUNS} in $((BENCH_RUNS + BENCH_SPARE)) attempts"
done
# The host counts the runs.
exit 0

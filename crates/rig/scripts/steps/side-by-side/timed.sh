# Step side-by-side: timed create, list and destroy (and create to /init for Linux) of
# each tool, the two taking turns, with spare attempts for runs that fail; rxl's creates
# run with --times and their per-step profile is printed as P lines.
# Set by the rig: GUESTS, LINUX_INIT_LINE, TIMED_CMD_S, TIMED_INIT_S, SETTLE_S, HELLO_RUNS,
# HELLO_SPARE, LINUX_RUNS, LINUX_SPARE, PV_LINUX_RUNS, PV_LINUX_SPARE. RXL_SETTLE_S, when set, overrides SETTLE_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
one() { # TOOL GUEST ATTEMPT
    name=sbs-$2-$1
    note "run $3 of $1 $2"
    n0=$(console_count "$name" "${LINUX_INIT_LINE}")
    times=
    [ "$1" = rxl ] && times=--times
    t0=$(now_ms)
    # shellcheck disable=SC2086 # $times is one word or none
    timeout "${TIMED_CMD_S}" "$1" create $times /e2e/sbs/"$2"-"$1".cfg >/tmp/sbs.out 2>&1 || {
        echo "run $3 of $1 $2: create failed: $(tail -n 2 /tmp/sbs.out | tr '\n' ' ')"
        return 3
    }
    t1=$(now_ms)
    timeout 30 "$1" list >/dev/null || { echo "run $3 of $1 $2: list failed"; return 3; }
    t2=$(now_ms)
    note "run $3 of $1 $2 created"
    init=
    if [ "$2" = linux ] || [ "$2" = pv-linux ]; then
        wait_console "$name" "${LINUX_INIT_LINE}" $((n0 + 1)) "${TIMED_INIT_S}"
        r=$?
        if [ $r != 0 ]; then
            echo "run $3 of $1 $2: no /init (wait=$r, state $(dom_state "$name")); Xen: $(xl dmesg | grep -v '^(XEN) \*\*\*' | tail -n 2 | tr '\n' ' ')"
            tail -n 8 /var/log/xen/console/guest-"$name".log 2>/dev/null
            return $r
        fi
        init=$(( $(now_ms) - t0 ))
        note "run $3 of $1 $2 reached /init"
    fi
    t3=$(now_ms)
    timeout 60 "$1" destroy "$name" || { echo "run $3 of $1 $2: destroy failed"; return 3; }
    t4=$(now_ms)
    echo "T tool=$1 guest=$2 run=$3 create_ms=$((t1 - t0)) list_ms=$((t2 - t1)) destroy_ms=$((t4 - t3)) init_ms=${init:--}"
    # rxl's per-step profile of this create (`rxl create --times`), as P lines.
    [ -n "$times" ] && sed -n "/^step /,/^total /s/^/P guest=$2 run=$3 | /p" /tmp/sbs.out
    note "run $3 of $1 $2 done in $((t4 - t0)) ms"
    # Untimed: let Xen finish tearing the domain down before the next create.
    sleep "${RXL_SETTLE_S:-$SETTLE_S}"
}
# Each tool gets N good runs of each guest, the two tools taking turns, with a few spare
# attempts for runs that fail; a failed run is named, its domain removed, and not timed.
for g in $GUESTS; do
    n=${HELLO_RUNS}; spare=${HELLO_SPARE}
    [ "$g" = linux ] && { n=${LINUX_RUNS}; spare=${LINUX_SPARE}; }
    [ "$g" = pv-linux ] && { n=${PV_LINUX_RUNS}; spare=${PV_LINUX_SPARE}; }
    # ok_xl and ok_rxl count good runs; eval reads them into ok.
    # shellcheck disable=SC2034
    ok_xl=0 ok_rxl=0
    for attempt in $(seq 1 $((n + spare))); do
        for tool in xl rxl; do
            eval ok=\$ok_$tool
            # shellcheck disable=SC2154
            [ "$ok" -ge "$n" ] && continue
            if one $tool "$g" "$attempt"; then
                eval ok_$tool=$((ok + 1))
            else
                echo "RETRY $tool $g after attempt $attempt"
                timeout 60 $tool destroy sbs-"$g"-$tool >/dev/null 2>&1
                timeout 60 xl destroy sbs-"$g"-$tool >/dev/null 2>&1
            fi
        done
    done
    for tool in xl rxl; do
        eval ok=\$ok_$tool
        [ "$ok" -lt "$n" ] && echo "FAILED $tool $g: $ok good runs of $n in $((n + spare)) attempts"
    done
done
# The host counts the runs.
exit 0

# Step autostart: the two test guests' configs in /etc/xen/auto (rxl's default autostart
# directory), then exactly the ExecStart and ExecStop lines of dist/systemd/
# rxl-autostart.service, each bounded by `timeout`, with `rxl events --json` following
# the journal in the background all along. Prints what the host checks as key=value lines
# and the event lines between "== events" and "== end".
# Set by the rig: START, STOP (the unit's lines, without systemd's "-" prefix), START_S,
# STOP_S (their bounds in seconds), NAME_A, NAME_B.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1

# names TOOL: the guests' names TOOL lists (Domain-0 left out), sorted, on one line.
names() {
    "$1" list 2>/dev/null | awk 'NR > 1 && $1 != "Domain-0" { print $1 }' | sort | tr '\n' ' '
}

mkdir -p /etc/xen/auto || exit 1
cp /e2e/autostart/*.cfg /etc/xen/auto/ || exit 1

rxl events --json >/tmp/autostart-events.jsonl 2>/tmp/autostart-events.err &
events=$!
# It follows new events only: wait until it watches the state directory (inotify).
i=0
watching() {
    for fd in /proc/"$events"/fd/*; do
        case $(readlink "$fd" 2>/dev/null) in *inotify*) return 0 ;; esac
    done
    return 1
}
until watching; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "rxl events is not watching after 10 s"; break; fi
    sleep 0.1
done

echo "== start: $START"
timeout "$START_S" sh -c "$START"
echo "start_rc=$?"
echo "xl_after_start=$(names xl)"
echo "rxl_after_start=$(names rxl)"
timeout 60 rxl autostart list
echo "== start again"
timeout "$START_S" sh -c "$START"
echo "again_rc=$?"
note "autostart: stopping"
echo "== stop: $STOP"
timeout "$STOP_S" sh -c "$STOP"
echo "stop_rc=$?"
echo "xl_after_stop=$(names xl)"
echo "rxl_after_stop=$(names rxl)"

kill -INT "$events"
wait "$events"
echo "events_rc=$?"
echo "== events"
cat /tmp/autostart-events.jsonl
echo "== end"
cat /tmp/autostart-events.err
rm -f /etc/xen/auto/"${NAME_A}".cfg /etc/xen/auto/"${NAME_B}".cfg
# Whatever is left (a failed stop) must not disturb the next steps.
for n in "${NAME_A}" "${NAME_B}"; do
    if [ "$(dom_state "$n")" != gone ]; then timeout 60 xl destroy "$n"; fi
done
exit 0

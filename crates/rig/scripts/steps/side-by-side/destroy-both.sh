# Step side-by-side: each tool destroys the other's domains; no xenstore directory of
# theirs may be left.
# Set by the rig: GUESTS.
rc=0
ids=
for g in $GUESTS; do
    for t in xl rxl; do ids="$ids $(xl domid sbs-"$g"-$t)"; done
done
for g in $GUESTS; do
    rxl destroy sbs-"$g"-xl || { echo "rxl destroy sbs-$g-xl failed"; rc=1; }
    xl destroy sbs-"$g"-rxl || { echo "xl destroy sbs-$g-rxl failed"; rc=1; }
done
sleep 1
for d in $ids; do
    for p in /local/domain/$d /libxl/$d /local/domain/0/backend/console/$d; do
        xenstore-exists "$p" 2>/dev/null && echo "LEFT $p"
    done
done
xl list
exit $rc

# Step side-by-side: each config created paused with xl and with rxl.
# Set by the rig: GUESTS (the guest kinds, a list of words).
for g in $GUESTS; do
    # Paused, so that the State letters cannot change between the two listings.
    xl create -p /e2e/sbs/"$g"-xl.cfg >/dev/null 2>&1 || { echo "xl create $g failed"; exit 1; }
    rxl create -p /e2e/sbs/"$g"-rxl.cfg >/dev/null || { echo "rxl create $g failed"; exit 1; }
done

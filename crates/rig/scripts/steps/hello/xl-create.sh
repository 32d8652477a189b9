# Step hello: xl create of the PVH test guest, then its RXLTEST lines from xl dmesg.
# Set by the rig: HELLO_NAME.
xl create /e2e/guests/hello.cfg || exit 1
domid=$(xl domid "${HELLO_NAME}") || exit 1
echo "domid=$domid"
i=0
until xl dmesg | grep -q "(d$domid) .*RXLTEST done"; do
    i=$((i + 1))
    if [ $i -gt 30 ]; then echo "no RXLTEST done after 30 s"; break; fi
    sleep 1
done
xl dmesg | grep "(d$domid)"

# Step rxl-hello: unpause the guest rxl created and collect its RXLTEST lines.
# Set by the rig: RXL_HELLO.
domid=$(rxl domid "${RXL_HELLO}") || exit 1
echo "domid=$domid"
rxl unpause "${RXL_HELLO}" || exit 1
i=0
until xl dmesg | grep -q "(d$domid) .*RXLTEST done"; do
    i=$((i + 1))
    if [ $i -gt 30 ]; then echo "no RXLTEST done after 30 s"; break; fi
    sleep 1
done
xl dmesg | grep "(d$domid)"

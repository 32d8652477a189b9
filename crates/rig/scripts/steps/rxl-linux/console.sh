# Step rxl-linux: rxl console on a fifo: a typed line reaches the guest (its answer comes
# back) and Ctrl-] detaches with status 0.
# Set by the rig: LINUX_NAME, CONSOLE_ECHO (the answer expected).
rm -f /tmp/cin /tmp/cout
mkfifo /tmp/cin || exit 1
rxl console "${LINUX_NAME}" </tmp/cin >/tmp/cout 2>&1 &
pid=$!
exec 5>/tmp/cin
sleep 1
printf 'console check %s\n' $((6 * 7)) >&5
i=0
until grep -q "${CONSOLE_ECHO}" /tmp/cout; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "no answer from the guest within 20 s"; break; }
    sleep 0.2
done
printf '\035' >&5
i=0
while kill -0 $pid 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 25 ] && { echo "rxl console still attached 5 s after Ctrl-]"; kill $pid; break; }
    sleep 0.2
done
wait $pid
echo "console_rc=$?"
exec 5>&-
echo "--- console output (last lines)"
tr -d '\r' </tmp/cout | tail -n 4

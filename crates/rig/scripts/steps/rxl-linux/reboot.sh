# Step rxl-linux: rxl reboot -w gives a new domain that reaches /init again.
# Set by the rig: LINUX_NAME, LINUX_INIT_LINE, LINUX_BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
old=$(rxl domid "${LINUX_NAME}") || exit 1
n0=$(console_count "${LINUX_NAME}" "${LINUX_INIT_LINE}")
t0=$(now_ms)
rxl reboot -w --timeout 120 "${LINUX_NAME}" || exit 1
i=0
until new=$(rxl domid "${LINUX_NAME}" 2>/dev/null) && [ "$new" != "$old" ]; do
    i=$((i + 1))
    [ $i -gt 150 ] && { echo "no new ${LINUX_NAME} domain 30 s after the reboot"; exit 1; }
    sleep 0.2
done
echo "old=$old new=$new"
# rxl knows the new domain before its name is in xenstore, where xl list reads it.
i=0
while [ "$(dom_state "${LINUX_NAME}")" = gone ]; do
    i=$((i + 1))
    [ $i -gt 150 ] && { echo "xl list never showed the new ${LINUX_NAME}"; exit 1; }
    sleep 0.2
done
wait_console "${LINUX_NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${LINUX_BOOT_S}"
r=$?
echo "wait=$r init_ms=$(( $(now_ms) - t0 ))"
grep -F "${LINUX_INIT_LINE}" /var/log/xen/console/guest-"${LINUX_NAME}".log | tail -n 1
xl list "${LINUX_NAME}"
exit $r

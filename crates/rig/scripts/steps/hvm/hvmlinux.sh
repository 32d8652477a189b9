# Step hvm, Linux booted directly as an HVM guest: TOOL creates an HVM guest whose device
# model loads Debian's kernel and the rig's initramfs itself (-kernel, -initrd, -append:
# SeaBIOS boots QEMU's linuxboot option ROM, which enters the kernel); the kernel must
# reach the initramfs's /init, whose line (LINUX_INIT_LINE) comes through the PV console
# to xenconsoled's log, within BOOT_S seconds. Then the device model's facts are printed,
# TOOL destroys the guest, and what is left is listed.
# Set by the rig: TOOL, NAME, CFG, LINUX_INIT_LINE, BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
t0=$(now_ms)
create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
note "${NAME}: d${domid} created, waiting for its /init"
waited=0
rc=1
while [ "${waited}" -lt "${BOOT_S}" ]; do
    wait_console "${NAME}" "${LINUX_INIT_LINE}" 1 30
    rc=$?
    [ "${rc}" = 1 ] || break
    waited=$((waited + 30))
    note "${NAME}: no /init after ${waited} s (state $(dom_state "${NAME}"))"
done
echo "wait_rc=${rc}"
if [ "${rc}" = 0 ]; then
    echo "init_ms=$(($(now_ms) - t0))"
else
    echo "init_ms=none"
fi
echo "state=$(dom_state "${NAME}")"
echo "--- console (last lines)"
tail -n 5 "/var/log/xen/console/guest-${NAME}.log" 2>/dev/null | cut -c1-200
echo "--- xl dmesg (d${domid}, last lines)"
xl dmesg | grep "(d${domid})" | tail -n 12
dm_facts "${domid}" "${NAME}"
destroy_and_list "${TOOL}" "${NAME}" "${domid}" "${CFG}"

# Step devices, persistence and cleanup: TOOL destroys the guest (nothing of it may be left),
# creates it again (the token written in the first boot is still on the disk), destroys it
# again (nothing left).
# Set by the rig: TOOL, NAME, CFG, DEV_DIR, LINUX_INIT_LINE, BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
disk="${DEV_DIR}/disk-${TOOL}.img"
domid=$(cat "${DEV_DIR}/${TOOL}.domid")
"${TOOL}" destroy "${NAME}"
echo "destroy1_rc=$?"
echo "--- leftovers after the first destroy (domid ${domid})"
leftovers "${domid}" "${disk}"
echo "dom0_token=$(debugfs -R 'cat /token' "${disk}" 2>/dev/null)"

n0=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
"${TOOL}" create "${CFG}"
echo "create2_rc=$?"
wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
r=$?
if [ $r = 2 ]; then
    echo "RETRY: ${NAME} died before /init"
    "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    "${TOOL}" create "${CFG}"
    wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
    r=$?
fi
echo "boot2=$r"
domid=$(xl domid "${NAME}")
note "${TOOL}: ${NAME} booted again"
guest_run "${NAME}" 60 "i=0; until [ -b /dev/xvda ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo token_again=\$(cat /mnt/token) && umount /mnt"
echo "token_rc=$?"
"${TOOL}" destroy "${NAME}"
echo "destroy2_rc=$?"
echo "--- leftovers after the second destroy (domid ${domid})"
leftovers "${domid}" "${disk}"
echo "--- end"

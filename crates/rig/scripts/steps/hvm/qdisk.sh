# Step hvm, qdisk: TOOL creates the PVH Linux guest whose disk xvdb is the qcow2 image IMAGE
# (served by a -machine xenpv device model); the guest writes TOKEN to xvdb and reads it
# back past its page cache; the device model's command line, log and xenstore nodes are
# printed; TOOL destroys the guest, what is left is listed, and the token must be in the
# qcow2 file.
# Set by the rig: TOOL, NAME, CFG, IMAGE, TOKEN, LINUX_INIT_LINE, BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
t0=$(now_ms)
create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
wait_console "${NAME}" "${LINUX_INIT_LINE}" 1 "${BOOT_S}"
r=$?
if [ $r = 2 ]; then
    echo "RETRY: ${NAME} died before /init; its console ended with:"
    tail -n 8 "/var/log/xen/console/guest-${NAME}.log" 2>/dev/null
    timeout 60 "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    timeout 60 xl destroy "${NAME}" >/dev/null 2>&1
    t0=$(now_ms)
    create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
    wait_console "${NAME}" "${LINUX_INIT_LINE}" 1 "${BOOT_S}"
    r=$?
fi
echo "boot=$r"
echo "boot_ms=$(($(now_ms) - t0))"
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
note "${NAME}: boot=$r"
dm_facts "${domid}" "${NAME}"
if [ $r = 0 ]; then
    echo "--- the guest writes and reads xvdb"
    guest_run "${NAME}" 90 "i=0; until [ -b /dev/xvdb ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; echo ${TOKEN} | dd of=/dev/xvdb bs=512 count=1 conv=sync,fsync 2>/dev/null || exit 8; echo 3 >/proc/sys/vm/drop_caches; echo readback=\$(dd if=/dev/xvdb bs=512 count=1 2>/dev/null | tr -d '\\000' | head -n 1)"
    echo "disk_rc=$?"
fi
destroy_and_list "${TOOL}" "${NAME}" "${domid}" "${IMAGE}"
echo "token_in_qcow2=$(grep -a -c "${TOKEN}" "${IMAGE}")"

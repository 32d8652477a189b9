# Step bootloader, one boot from the guest's own disk: TOOL creates the guest NAME from CFG,
# whose disk DISK is a fresh copy of IMAGE (a partitioned disk whose grub.cfg's default
# entry is not the first). The guest must reach /init with the default entry's command
# line (read from /proc/cmdline through its console). With REBOOT=yes the guest then mounts
# its partition PART, rewrites the default in CFG_FILE (set default=1 -> 0) with sed, and
# TOOL reboot makes a new domain boot through the bootloader again: it must reach /init
# with the new default's command line. Then TOOL destroy, and what is left of the domain.
# Set by the rig: TOOL, NAME, CFG, IMAGE, DISK, BOOT_S, LINUX_INIT_LINE, REBOOT, PART,
# CFG_FILE.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
mkdir -p "$(dirname "${DISK}")"
cp "${IMAGE}" "${DISK}" || exit 1
log=/var/log/xen/console/guest-${NAME}.log
boot_once() {
    n0=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
    t0=$(now_ms)
    timeout 150 "${TOOL}" create "${CFG}" >"${DISK}.create.out" 2>&1
    rc=$?
    t1=$(now_ms)
    tail -n 15 "${DISK}.create.out"
    echo "create_rc=$rc"
    [ $rc = 0 ] || return 3
    echo "create_ms=$((t1 - t0))"
    note "${NAME}: created in $((t1 - t0)) ms"
    wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
}
boot_once
r=$?
if [ $r = 2 ]; then
    note "${NAME}: died before /init, booting it again"
    echo "RETRY: ${NAME} died before /init; its console ended with:"
    tr -d '\r' <"$log" 2>/dev/null | tail -n 8
    timeout 60 "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    timeout 60 xl destroy "${NAME}" >/dev/null 2>&1
    cp "${IMAGE}" "${DISK}" || exit 1
    boot_once
    r=$?
fi
echo "init_ms=$(($(now_ms) - t0))"
echo "boot=$r"
if [ $r != 0 ]; then
    echo "--- console"
    tr -d '\r' <"$log" 2>/dev/null | tail -n 25
    timeout 60 "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    exit 1
fi
note "${NAME}: reached /init"
domid=$(xl domid "${NAME}")
echo "domid=$domid"
echo "cmdline=$(guest_run "${NAME}" 30 'cat /proc/cmdline')"

if [ "${REBOOT}" = yes ]; then
    echo "--- edit"
    guest_run "${NAME}" 60 "i=0; until [ -b /dev/${PART} ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; mkdir -p /mnt && mount -t ext4 /dev/${PART} /mnt && sed -i 's/^set default=1\$/set default=0/' /mnt${CFG_FILE} && grep '^set default' /mnt${CFG_FILE} && umount /mnt && sync"
    rc=$?
    echo "edit_rc=$rc"
    note "${NAME}: grub.cfg rewritten (status $rc), rebooting"
    n1=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
    t2=$(now_ms)
    timeout 60 "${TOOL}" reboot "${NAME}"
    echo "reboot_rc=$?"
    # rxl runs the bootloader before it builds the new domain, so the name is absent for
    # that long (pygrub under a loaded emulation: 25 s and more); xl builds first.
    RXL_GONE_MS=90000 wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n1 + 1)) "${BOOT_S}"
    r=$?
    echo "reboot_init_ms=$(($(now_ms) - t2))"
    echo "reboot_boot=$r"
    if [ $r = 0 ]; then
        note "${NAME}: rebooted and reached /init"
        echo "domid_after=$(xl domid "${NAME}")"
        echo "cmdline_after=$(guest_run "${NAME}" 30 'cat /proc/cmdline')"
    else
        echo "--- console after reboot"
        tr -d '\r' <"$log" 2>/dev/null | tail -n 25
    fi
fi

last=$(xl domid "${NAME}" 2>/dev/null || echo "$domid")
timeout 60 "${TOOL}" destroy "${NAME}"
echo "destroy_rc=$?"
echo "state=$(dom_state "${NAME}")"
leftovers "$last" "${DISK}"
[ "$last" = "$domid" ] || leftovers "$domid" "${DISK}"
rm -f "${DISK}" "${DISK}.create.out"
echo "--- end"

# Step pv: a PV guest with a disk (an ext4 image made here through the block script's loop
# device) and a vif on xenbr0: the guest mounts the disk and reads the file written in dom0,
# dom0 and the guest ping each other's link-local address; rxl destroy leaves nothing.
# Set by the rig: NAME, CFG, DISK_TEXT, LINUX_INIT_LINE, BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
mkdir -p /e2e/pv/src || exit 1
printf '%s\n' "${DISK_TEXT}" >/e2e/pv/src/hello.txt || exit 1
/sbin/mke2fs -q -t ext4 -d /e2e/pv/src -F /e2e/pv/disk.img 16M || exit 1
boot_once() {
    n0=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
    timeout 120 rxl create "${CFG}" || return 3
    wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
}
note "${NAME}: creating"
boot_once
r=$?
if [ $r = 2 ]; then
    echo "RETRY: ${NAME} died before /init; its console ended with:"
    tail -n 8 "/var/log/xen/console/guest-${NAME}.log" 2>/dev/null
    timeout 60 rxl destroy "${NAME}" >/dev/null 2>&1
    boot_once
    r=$?
fi
echo "boot=$r"
note "${NAME}: boot ended ($r)"
[ $r = 0 ] || exit 1
dom=$(xl domid "${NAME}")
echo "domid=${dom}"
echo "protocol=$(xenstore-read "/local/domain/${dom}/device/vbd/51712/protocol" 2>/dev/null)"
echo "--- disk"
guest_run "${NAME}" 60 "i=0; until [ -b /dev/xvda ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; mkdir -p /mnt/xvda && mount -t ext4 /dev/xvda /mnt/xvda && echo disk_text=\$(cat /mnt/xvda/hello.txt) && echo pv-token >/mnt/xvda/token && sync && umount /mnt/xvda"
echo "disk_rc=$?"
note "${NAME}: disk checked"
echo "--- network"
guest_run "${NAME}" 60 "ip link set eth0 up || exit 8; i=0; while ! ip -6 addr show dev eth0 | grep -q 'inet6 fe80' || ip -6 addr show dev eth0 | grep -q tentative; do i=\$((i+1)); [ \$i -gt 100 ] && exit 9; sleep 0.2; done; echo guest_mac=\$(cat /sys/class/net/eth0/address); ip -6 addr show dev eth0"
echo "net_rc=$?"
guest_ll=$(tr -d '\r' <"/var/log/xen/console/guest-${NAME}.log" | sed -n 's/.*RXL-OUT [0-9x]* *inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p' | tail -n 1)
dom0_ll=$(/bin/ip -6 addr show dev xenbr0 scope link | sed -n 's/.*inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p' | head -n 1)
echo "guest_ll=${guest_ll} dom0_ll=${dom0_ll}"
timeout 30 ping -6 -c 3 -W 2 "${guest_ll}%xenbr0" >/dev/null
echo "dom0_ping_rc=$?"
guest_run "${NAME}" 40 "timeout 30 ping -6 -c 3 -W 2 ${dom0_ll}%eth0 >/dev/null"
echo "guest_ping_rc=$?"
note "${NAME}: network checked"
echo "--- destroy"
timeout 60 rxl destroy "${NAME}"
echo "destroy_rc=$?"
sleep 1
leftovers "${dom}" /e2e/pv/disk.img
echo "state=$(dom_state "${NAME}")"
echo "--- end"

# Step devices, first boot: TOOL creates the Linux guest with a disk (ext4 image, xvda) and a
# vif on xenbr0; the guest mounts xvda, reads the file, writes a token; eth0 has the
# configured MAC; dom0 and guest ping each other's link-local address; TOOL's block-list
# and network-list are printed.
# Set by the rig: TOOL, NAME, CFG, DEV_DIR, TOKEN, LINUX_INIT_LINE, BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
boot_once() {
    n0=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
    "${TOOL}" create "${CFG}" || return 3
    wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
}
boot_once
r=$?
if [ $r = 2 ]; then
    echo "RETRY: ${NAME} died before /init; its console ended with:"
    tail -n 8 "/var/log/xen/console/guest-${NAME}.log" 2>/dev/null
    "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    boot_once
    r=$?
fi
echo "boot=$r"
[ $r = 0 ] || exit 1
xl domid "${NAME}" >"${DEV_DIR}/${TOOL}.domid"
echo "domid=$(cat "${DEV_DIR}/${TOOL}.domid")"
note "${TOOL}: ${NAME} reached /init"

echo "--- disk"
guest_run "${NAME}" 60 "i=0; until [ -b /dev/xvda ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo disk_text=\$(cat /mnt/hello.txt) && echo ${TOKEN} >/mnt/token && sync && umount /mnt"
echo "disk_rc=$?"

echo "--- network"
guest_run "${NAME}" 60 "ip link set eth0 up || exit 8; i=0; while ! ip -6 addr show dev eth0 | grep -q 'inet6 fe80' || ip -6 addr show dev eth0 | grep -q tentative; do i=\$((i+1)); [ \$i -gt 100 ] && exit 9; sleep 0.2; done; echo guest_mac=\$(cat /sys/class/net/eth0/address); ip -6 addr show dev eth0"
echo "net_rc=$?"
guest_ll=$(tr -d '\r' <"/var/log/xen/console/guest-${NAME}.log" | sed -n 's/.*RXL-OUT [0-9x]* *inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p' | tail -n 1)
i=0
while ! /bin/ip -6 addr show dev xenbr0 | grep -q 'inet6 fe80' || /bin/ip -6 addr show dev xenbr0 | grep -q tentative; do
    i=$((i + 1))
    [ $i -gt 50 ] && break
    sleep 0.2
done
dom0_ll=$(/bin/ip -6 addr show dev xenbr0 scope link | sed -n 's/.*inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p' | head -n 1)
echo "guest_ll=${guest_ll}"
echo "dom0_ll=${dom0_ll}"
echo "--- dom0 pings the guest"
timeout 30 ping -6 -c 3 -W 2 "${guest_ll}%xenbr0"
echo "dom0_ping_rc=$?"
echo "--- the guest pings dom0"
guest_run "${NAME}" 40 "timeout 30 ping -6 -c 3 -W 2 ${dom0_ll}%eth0"
echo "guest_ping_rc=$?"
echo "--- vif in dom0"
/bin/ip -o link show | grep -o "vif[0-9]*\.[0-9]*.*master xenbr0" | cut -d' ' -f1
echo "--- ${TOOL} block-list"
"${TOOL}" block-list "${NAME}"
echo "block_list_rc=$?"
echo "--- ${TOOL} network-list"
"${TOOL}" network-list "${NAME}"
echo "network_list_rc=$?"
echo "--- end"

# Step devices, first boot of one tool: TOOL creates the Linux guest with two disks (xvda:
# an ext4 image file through the block script's loop device; xvdc: phy: on a loop device
# dom0 set up) and a vif on xenbr0. The guest mounts each disk, reads the file written in
# dom0 and the token the previous tool's guest wrote, and writes its own token; eth0 has
# the configured MAC; dom0 and the guest ping each other's link-local address; the
# block-list and network-list of each tool in LISTERS are printed for comparison.
# Set by the rig: TOOL, LABEL, HOTPLUG, NAME, CFG, DEV_DIR, TOKEN, LINUX_INIT_LINE, BOOT_S,
# LISTERS.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug "${HOTPLUG}"
# A guest of an earlier tool that its destroy left would hold the shared images.
for d in $(xl list | awk 'NR > 1 && $1 ~ /^dev-/ { print $1 }'); do
    echo "cleared: $d was still there"
    timeout 60 xl destroy "$d" >/dev/null 2>&1
done
boot_once() {
    n0=$(console_count "${NAME}" "${LINUX_INIT_LINE}")
    c0=$(hotplug_calls)
    timeout 120 "${TOOL}" create "${CFG}" || return 3
    # Runs of Xen's block and vif-bridge scripts during the create.
    echo "create_scripts=$(($(hotplug_calls) - c0))"
    wait_console "${NAME}" "${LINUX_INIT_LINE}" $((n0 + 1)) "${BOOT_S}"
}
t0=$(now_ms)
boot_once
r=$?
if [ $r = 2 ]; then
    echo "RETRY: ${NAME} died before /init; its console ended with:"
    tail -n 8 "/var/log/xen/console/guest-${NAME}.log" 2>/dev/null
    timeout 60 "${TOOL}" destroy "${NAME}" >/dev/null 2>&1
    timeout 60 xl destroy "${NAME}" >/dev/null 2>&1
    t0=$(now_ms)
    boot_once
    r=$?
fi
echo "boot=$r"
echo "boot_ms=$(($(now_ms) - t0))"
[ $r = 0 ] || exit 1
xl domid "${NAME}" >"${DEV_DIR}/${LABEL}.domid"
echo "domid=$(cat "${DEV_DIR}/${LABEL}.domid")"
note "${LABEL}: ${NAME} reached /init"

# guest_disk VDEV: in the guest, waits for /dev/VDEV, mounts it, prints VDEV_text (the file
# written in dom0) and VDEV_token_before (the token on it), writes TOKEN, unmounts.
guest_disk() {
    guest_run "${NAME}" 60 "i=0; until [ -b /dev/$1 ]; do i=\$((i+1)); [ \$i -gt 150 ] && exit 9; sleep 0.2; done; mkdir -p /mnt/$1 && mount -t ext4 /dev/$1 /mnt/$1 && echo $1_text=\$(cat /mnt/$1/hello.txt) && echo $1_token_before=\$(cat /mnt/$1/token 2>/dev/null) && echo ${TOKEN} >/mnt/$1/token && sync && umount /mnt/$1"
}
for vdev in xvda xvdc; do
    echo "--- disk ${vdev}"
    # The token the last guest that got this far wrote (none before the first tool).
    echo "${vdev}_token_expected=$(cat "${DEV_DIR}/${vdev}.token" 2>/dev/null)"
    guest_disk "${vdev}"
    rc=$?
    echo "${vdev}_rc=$rc"
    [ $rc = 0 ] && echo "${TOKEN}" >"${DEV_DIR}/${vdev}.token"
done

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
# Word splitting of LISTERS (tool names) is meant.
# shellcheck disable=SC2086
dev_lists "${NAME}" at-boot ${LISTERS}
echo "--- end"

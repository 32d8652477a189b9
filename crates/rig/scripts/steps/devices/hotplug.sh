# Step devices, hot-plug: TOOL block-attach of a second image shows up in the guest's
# /proc/partitions and block-detach removes it; network-attach gives the guest a second
# interface with the MAC asked for, network-detach removes it. While each is attached, the
# lists of every tool in LISTERS are printed for comparison.
# Set by the rig: TOOL, LABEL, HOTPLUG, NAME, DEV_DIR, EXTRA_MAC, LISTERS.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug "${HOTPLUG}"
# in_guest SECS COND: waits in the guest until the shell condition COND holds (status 9 if not).
in_guest() {
    guest_run "${NAME}" $(($1 + 20)) "i=0; until $2; do i=\$((i+1)); [ \$i -gt $(($1 * 5)) ] && exit 9; sleep 0.2; done"
}
c0=$(hotplug_calls)
timeout 60 "${TOOL}" block-attach "${NAME}" "format=raw,vdev=xvdb,access=rw,target=${DEV_DIR}/extra.img"
echo "block_attach_rc=$?"
echo "block_attach_scripts=$(($(hotplug_calls) - c0))"
in_guest 30 "grep -q -w xvdb /proc/partitions"
echo "xvdb_seen_rc=$?"
# Word splitting of LISTERS (tool names) is meant.
# shellcheck disable=SC2086
dev_lists "${NAME}" with-xvdb ${LISTERS}
timeout 60 "${TOOL}" block-detach "${NAME}" xvdb
echo "block_detach_rc=$?"
in_guest 30 "! grep -q -w xvdb /proc/partitions"
echo "xvdb_gone_rc=$?"
/sbin/losetup -a | grep -F "${DEV_DIR}/extra.img" | sed 's/^/leftover: loop /'

c0=$(hotplug_calls)
timeout 60 "${TOOL}" network-attach "${NAME}" bridge=xenbr0 "mac=${EXTRA_MAC}"
echo "network_attach_rc=$?"
echo "network_attach_scripts=$(($(hotplug_calls) - c0))"
in_guest 30 "grep -q -i ${EXTRA_MAC} /sys/class/net/eth1/address 2>/dev/null"
echo "eth1_seen_rc=$?"
# shellcheck disable=SC2086
dev_lists "${NAME}" with-eth1 ${LISTERS}
timeout 60 "${TOOL}" network-detach "${NAME}" "${EXTRA_MAC}"
echo "network_detach_rc=$?"
in_guest 30 "[ ! -e /sys/class/net/eth1 ]"
echo "eth1_gone_rc=$?"
echo "--- end"

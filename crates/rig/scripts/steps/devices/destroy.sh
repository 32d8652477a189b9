# Step devices, cross-destroy: DESTROYER (the other tool when both run) destroys the guest
# TOOL created; nothing of it may be left, the phy: disk's loop device (dom0's own) stays
# bound, and debugfs in dom0 reads the guest's token from both images.
# Set by the rig: TOOL, LABEL, HOTPLUG, NAME, DESTROYER, DEV_DIR.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug "${HOTPLUG}"
domid=$(cat "${DEV_DIR}/${LABEL}.domid") || exit 1
t0=$(now_ms)
timeout 60 "${DESTROYER}" destroy "${NAME}"
echo "destroy_rc=$?"
echo "destroy_ms=$(($(now_ms) - t0))"
echo "--- leftovers after ${DESTROYER} destroy (domid ${domid})"
leftovers "${domid}" "${DEV_DIR}/disk.img"
phy=$(cat "${DEV_DIR}/phy.dev")
/sbin/losetup "${phy}" | grep -q -F "${DEV_DIR}/phy.img" || echo "leftover: phy: ${phy} no longer bound to phy.img"
echo "dom0_xvda_token=$(debugfs -R 'cat /token' "${DEV_DIR}/disk.img" 2>/dev/null)"
echo "dom0_xvdc_token=$(debugfs -R 'cat /token' "${DEV_DIR}/phy.img" 2>/dev/null)"
echo "--- end"

# Step devices, cleanup: rxl's host file goes (rxl's default hotplug path again), the real
# hotplug scripts are put back, the phy: disk's loop device is detached, no guest of the step
# is left.
# Set by the rig: DEV_DIR.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug scripts
for d in $(xl list | awk 'NR > 1 && ($1 ~ /^dev-/ || $1 ~ /^bench-/) { print $1 }'); do
    echo "leftover: domain $d (destroyed now)"
    timeout 60 xl destroy "$d" >/dev/null 2>&1
done
for script in ${hotplug_counted}; do
    real=/etc/xen/scripts/${script}.real
    [ -e "${real}" ] && mv "${real}" "/etc/xen/scripts/${script}"
done
echo "--- hotplug script runs"
cat "${hotplug_calls_log}" 2>/dev/null
/sbin/losetup -d "$(cat "${DEV_DIR}/phy.dev")"
echo "phy_detach_rc=$?"
/sbin/losetup -a
echo "--- end"

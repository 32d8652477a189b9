# Step devices: the disk images (ext4, made in dom0 with mke2fs -d from a directory holding
# the file the guests must read), the loop device of the phy: disk (written into the configs
# in place of @PHY@), wrappers that count the runs of Xen's block and vif-bridge scripts, and
# the state of dom0's bridge before any guest.
# Set by the rig: DEV_DIR, CFG_DIR, DISK_TEXT.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug scripts
mkdir -p "${DEV_DIR}/src" || exit 1
printf '%s\n' "${DISK_TEXT}" >"${DEV_DIR}/src/hello.txt" || exit 1
for img in disk phy; do
    /sbin/mke2fs -q -t ext4 -d "${DEV_DIR}/src" -F "${DEV_DIR}/$img.img" 16M || exit 1
done
/sbin/mke2fs -q -t ext4 -F "${DEV_DIR}/extra.img" 8M || exit 1
/sbin/mke2fs -q -t ext4 -F "${DEV_DIR}/bench.img" 8M || exit 1
# Count the hotplug scripts' runs (rxl's native path must run none of them).
for script in ${hotplug_counted}; do
    real=/etc/xen/scripts/${script}.real
    [ -e "${real}" ] || mv "/etc/xen/scripts/${script}" "${real}" || exit 1
    printf '#!/bin/sh\necho "%s $*" >>%s\nexec %s "$@"\n' "${script}" "${hotplug_calls_log}" "${real}" \
        >"/etc/xen/scripts/${script}" || exit 1
    chmod 755 "/etc/xen/scripts/${script}"
done
phy=$(/sbin/losetup -f --show "${DEV_DIR}/phy.img") || exit 1
echo "${phy}" >"${DEV_DIR}/phy.dev"
echo "phy=${phy}"
sed -i "s|@PHY@|${phy}|" "${CFG_DIR}"/*.cfg || exit 1
ls -l "${DEV_DIR}"
echo "--- modules"
lsmod | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' '
echo
echo "--- xenbr0"
/bin/ip -d link show dev xenbr0
echo "--- ipv4 addresses (none expected)"
/bin/ip -4 -o addr show | grep -v " lo "
echo "--- routable ipv6 addresses (none expected)"
/bin/ip -6 -o addr show scope global
echo "--- end"
exit 0

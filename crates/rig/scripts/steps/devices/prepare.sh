# Step devices: the disk images (ext4, made in dom0 with mke2fs -d from a directory holding
# the file the guest must read) and the state of dom0's bridge before any guest.
# Set by the rig: DEV_DIR, DISK_TEXT, TOOLS (the tools that take turns).
mkdir -p "${DEV_DIR}/src" || exit 1
printf '%s\n' "${DISK_TEXT}" >"${DEV_DIR}/src/hello.txt" || exit 1
for tool in ${TOOLS}; do
    /sbin/mke2fs -q -t ext4 -d "${DEV_DIR}/src" -F "${DEV_DIR}/disk-$tool.img" 16M || exit 1
    /sbin/mke2fs -q -t ext4 -F "${DEV_DIR}/extra-$tool.img" 8M || exit 1
done
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

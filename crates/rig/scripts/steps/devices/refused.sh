# Step devices, refusals: TOOL creates a guest whose vif names a bridge that does not exist,
# then one whose disk image does not exist. Both must fail; what each leaves behind is
# listed (the host judges rxl's and reports xl's).
# Set by the rig: TOOL, LABEL, HOTPLUG, NOBRIDGE_NAME, NOBRIDGE_CFG, NOIMAGE_NAME, NOIMAGE_CFG,
# DEV_DIR.
# shellcheck source=lib.sh
. /e2e/lib.sh
use_hotplug "${HOTPLUG}"
# orphans IMAGE: what belongs to no domain xl lists: xenstore directories under the
# backends, /libxl and /local/domain, vif interfaces, loop devices bound to IMAGE.
orphans() {
    live=" $(xl list | awk 'NR > 1 { print $2 }' | tr '\n' ' ') "
    for dir in /local/domain/0/backend/vbd /local/domain/0/backend/vif /libxl /local/domain; do
        for id in $(xenstore-list "$dir" 2>/dev/null); do
            case "$live" in
                *" $id "*) ;;
                *) echo "leftover: xenstore $dir/$id" ;;
            esac
        done
    done
    for vif in $(/bin/ip -o link show | grep -o 'vif[0-9]*\.[0-9]*' | sort -u); do
        id=${vif#vif}
        case "$live" in
            *" ${id%%.*} "*) ;;
            *) echo "leftover: interface $vif" ;;
        esac
    done
    /sbin/losetup -a | grep -F "$1" | sed 's/^/leftover: loop /'
    return 0
}
refused() {
    echo "--- ${TOOL} create $2"
    timeout 120 "${TOOL}" create "$2" >/tmp/refused.out 2>&1
    rc=$?
    tail -n 12 /tmp/refused.out
    echo "$1_rc=$rc"
    echo "--- $1 leftovers"
    orphans "$3"
    if timeout 60 "${TOOL}" destroy "$4" >/dev/null 2>&1; then
        echo "leftover: domain $4 (destroyed now)"
    fi
}
refused nobridge "${NOBRIDGE_CFG}" "${DEV_DIR}/disk.img" "${NOBRIDGE_NAME}"
refused noimage "${NOIMAGE_CFG}" "${DEV_DIR}/missing-${LABEL}.img" "${NOIMAGE_NAME}"
echo "--- end"

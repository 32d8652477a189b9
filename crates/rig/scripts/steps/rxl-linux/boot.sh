# Step rxl-linux: boot_linux NAME CFG creates the Linux guest and waits for its /init line
# (one retry when the guest dies before /init), printing create_ms=, init_ms= and domid=.
# Set by the rig: LINUX_NAME, LINUX_CFG, LINUX_INIT_LINE, LINUX_BOOT_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
boot_once() {
    n0=$(console_count "$1" "${LINUX_INIT_LINE}")
    t0=$(now_ms)
    rxl create "$2" || return 3
    t1=$(now_ms)
    wait_console "$1" "${LINUX_INIT_LINE}" $((n0 + 1)) "${LINUX_BOOT_S}"
    r=$?
    t2=$(now_ms)
    echo "create_ms=$((t1 - t0)) init_ms=$((t2 - t0)) wait=$r"
    return $r
}
boot_linux() {
    boot_once "$1" "$2"
    r=$?
    if [ $r = 2 ]; then
        echo "RETRY: $1 died before /init (state $(dom_state "$1")); its console ended with:"
        tail -n 8 "/var/log/xen/console/guest-$1.log" 2>/dev/null
        rxl destroy "$1" >/dev/null 2>&1
        boot_once "$1" "$2"
        r=$?
    fi
    echo "domid=$(rxl domid "$1")"
    grep -F "${LINUX_INIT_LINE}" "/var/log/xen/console/guest-$1.log" | tail -n 1
    return $r
}
cd /tmp || exit 1
boot_linux "$LINUX_NAME" "$LINUX_CFG"

# Step hvm, HVM boot paths: TOOL creates an HVM guest and waits for FIRST on Xen's
# console (a "(dN)" line; MARKER_S seconds) when it is set, then for MARKER (port 0xe9;
# 60 s after FIRST, else MARKER_S), then for LAST (30 s) when it is set.
# MODE=kernel: the device model boots a multiboot kernel directly (-kernel, -initrd,
# -append): SeaBIOS boots QEMU's option ROM (FIRST, its "Booting from ROM" line), which
# enters the kernel; the kernel prints MARKER, its command line and its module's text
# (LAST).
# MODE=ahci: SeaBIOS boots the boot sector from a disk on the AHCI controller, and the
# device model serves VNC on 127.0.0.1: its TCP listeners on ports 5900-5999 are listed
# (address, port, whether the device model owns the socket) and the first one the device
# model owns on 127.0.0.1 must answer with the RFB banner.
# Then the device model's facts are printed, TOOL destroys the guest, and what is left is
# listed (and, for ahci, the VNC listeners left).
# Set by the rig: TOOL, NAME, CFG, MODE, FIRST, MARKER, LAST, MARKER_S, IMG.
# shellcheck source=lib.sh
. /e2e/lib.sh
echo "mode=${MODE}"
t0=$(now_ms)
create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
note "${NAME}: d${domid} created, waiting for ${FIRST:-${MARKER}}"
wait_s=${MARKER_S}
if [ -n "${FIRST}" ]; then
    if dmesg_wait "${domid}" "${FIRST}" "${MARKER_S}" "${NAME}"; then
        echo "first_ms=$(($(now_ms) - t0))"
        wait_s=60
    else
        echo "first_ms=none"
        wait_s=0
    fi
fi
if [ "${wait_s}" -gt 0 ] && dmesg_wait "${domid}" "${MARKER}" "${wait_s}" "${NAME}"; then
    echo "marker_ms=$(($(now_ms) - t0))"
    if [ -n "${LAST}" ]; then
        dmesg_wait "${domid}" "${LAST}" 30 "${NAME}" && echo "last_ms=$(($(now_ms) - t0))"
    fi
else
    echo "marker_ms=none"
fi
echo "state=$(dom_state "${NAME}")"
echo "--- xl dmesg (d${domid})"
xl dmesg | grep "(d${domid})" | tail -n 60

# tcp_addr HEX: the address of a /proc/net/tcp(6) local_address (without its port).
tcp_addr() {
    case $1 in
        ????????)
            echo "$1" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4 \3 \2 \1/' | {
                read -r _ta_a _ta_b _ta_c _ta_d
                echo "$((0x${_ta_a})).$((0x${_ta_b})).$((0x${_ta_c})).$((0x${_ta_d}))"
            } ;;
        00000000000000000000000000000000) echo "::" ;;
        00000000000000000000000001000000) echo "::1" ;;
        *) echo "v6:$1" ;;
    esac
}

# vnc_listeners PID: one "vnc_listener=ADDR:PORT owner=dm|other" line for each listening
# TCP socket on ports 5900-5999 (IPv4 and IPv6); "dm" when process PID holds it.
vnc_listeners() {
    _vl_inodes=" "
    if [ -n "$1" ]; then
        for _vl_fd in "/proc/$1/fd/"*; do
            _vl_l=$(readlink "${_vl_fd}" 2>/dev/null)
            case ${_vl_l} in
                socket:*)
                    _vl_i=${_vl_l#socket:\[}
                    _vl_inodes="${_vl_inodes}${_vl_i%]} " ;;
            esac
        done
    fi
    for _vl_f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "${_vl_f}" ] || continue
        while read -r _ _vl_local _ _vl_st _ _ _ _ _ _vl_inode _; do
            [ "${_vl_st}" = 0A ] || continue
            _vl_port=$((0x${_vl_local##*:}))
            { [ "${_vl_port}" -ge 5900 ] && [ "${_vl_port}" -le 5999 ]; } || continue
            case ${_vl_inodes} in
                *" ${_vl_inode} "*) _vl_owner=dm ;;
                *) _vl_owner=other ;;
            esac
            echo "vnc_listener=$(tcp_addr "${_vl_local%:*}"):${_vl_port} owner=${_vl_owner}"
        done <"${_vl_f}"
    done
}

if [ "${MODE}" = ahci ]; then
    pid=$(xenstore-read "/local/domain/${domid}/image/device-model-pid" 2>/dev/null)
    echo "xs_vnc_listen=$(xenstore-read "/local/domain/${domid}/console/vnc-listen" 2>/dev/null)"
    echo "xs_vnc_port=$(xenstore-read "/local/domain/${domid}/console/vnc-port" 2>/dev/null)"
    echo "--- vnc listeners (ports 5900-5999)"
    vnc_listeners "${pid}" >/tmp/hvmboot-vnc.out
    cat /tmp/hvmboot-vnc.out
    echo "--- busybox netstat -ltn"
    /bin/busybox netstat -ltn 2>&1 | head -n 20
    port=$(sed -n 's/^vnc_listener=127\.0\.0\.1:\([0-9]*\) owner=dm$/\1/p' /tmp/hvmboot-vnc.out | head -n 1)
    if [ -n "${port}" ]; then
        # 127.0.0.1 is reachable only with the loopback interface up: bring it up for
        # the connection when it is down, and down again after.
        lo_up=$(($(cat /sys/class/net/lo/flags) & 1))
        echo "lo_was_up=${lo_up}"
        [ "${lo_up}" = 1 ] || /bin/ip link set lo up
        # The server speaks first; stdin stays open a while so nc does not quit at once.
        sleep 5 | timeout 10 /bin/busybox nc 127.0.0.1 "${port}" >/tmp/hvmboot-rfb.out 2>&1
        echo "vnc_nc_rc=$?"
        echo "vnc_banner=$(head -n 1 /tmp/hvmboot-rfb.out | tr -cd 'A-Za-z0-9 .:')"
        [ "${lo_up}" = 1 ] || /bin/ip link set lo down
    fi
fi
dm_facts "${domid}" "${NAME}"
destroy_and_list "${TOOL}" "${NAME}" "${domid}" "${IMG}"
if [ "${MODE}" = ahci ]; then
    echo "--- vnc listeners after the destroy"
    vnc_listeners "" >/tmp/hvmboot-vnc.out
    cat /tmp/hvmboot-vnc.out
    echo "vnc_listeners_after=$(grep -c . /tmp/hvmboot-vnc.out)"
fi

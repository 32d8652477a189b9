# Step hvm, HVM guest: TOOL creates an HVM guest (hvmloader, SeaBIOS, a -machine xenfv
# device model) whose raw disk's boot sector prints MARKER on port 0xe9 (Xen's console, as
# a "(dN)" line) and on COM1 (QEMU's serial port, a pty named in xenstore); the times to
# both are measured. The guest's vif (default type, ioemu) is netback's vifD.0 and the
# emulated NIC's tap vifD.0-emu: their bridge and up flag are printed. Then the device
# model's command line, log and the xenstore nodes the toolstack wrote are printed, TOOL
# destroys the guest, and what is left is listed.
# Set by the rig: TOOL, NAME, CFG, MARKER, MARKER_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
t0=$(now_ms)
create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
# The vif is netback's vifD.0 and the emulated NIC's tap vifD.0-emu, both ports of the
# bridge and up while the guest runs.
port_facts() {
    if [ -e "/sys/class/net/$2" ]; then
        _pf_m=$(readlink "/sys/class/net/$2/master" 2>/dev/null)
        echo "$1_master=${_pf_m##*/}"
        echo "$1_up=$(($(cat "/sys/class/net/$2/flags") & 1))"
        /bin/ip -o link show dev "$2" 2>&1 | cut -c1-200
    else
        echo "$1_master=none"
    fi
}
port_facts vif "vif${domid}.0"
port_facts tap "vif${domid}.0-emu"
tty=$(xenstore-read "/local/domain/${domid}/serial/0/tty" 2>/dev/null)
echo "serial_tty=${tty}"
serial=/tmp/hvm-serial-${NAME}.out
: >"${serial}"
reader=
if [ -n "${tty}" ]; then
    stty -F "${tty}" raw -echo 2>/dev/null
    timeout "${MARKER_S}" cat "${tty}" >"${serial}" 2>&1 &
    reader=$!
fi
marker_ms=
serial_ms=
i=0
while [ -z "${marker_ms}" ] || [ -z "${serial_ms}" ]; do
    if [ -z "${marker_ms}" ] && xl dmesg | grep -q "(d${domid}) .*${MARKER}"; then
        marker_ms=$(($(now_ms) - t0))
    fi
    if [ -z "${serial_ms}" ] && grep -q "${MARKER}" "${serial}"; then
        serial_ms=$(($(now_ms) - t0))
    fi
    i=$((i + 1))
    [ $((i % 30)) = 0 ] && note "${NAME}: waiting for ${MARKER} (${i} s, state $(dom_state "${NAME}"))"
    [ "${i}" -ge "${MARKER_S}" ] && break
    sleep 1
done
echo "marker_ms=${marker_ms:-none}"
echo "serial_ms=${serial_ms:-none}"
[ -n "${reader}" ] && kill "${reader}" 2>/dev/null
echo "serial_marker_lines=$(grep -c "${MARKER}" "${serial}")"
echo "--- serial pty (first lines)"
# (awk ends the last line, which the reader may have cut short.)
head -n 3 "${serial}" | awk 1
# xl's own serial console reader, without a terminal (xenconsole takes a lock in /var/lock).
echo "--- xl console -t serial (10 s)"
timeout 10 xl console -t serial "${NAME}" </dev/null >/tmp/hvm-console.out 2>&1
echo "xl_console_rc=$?"
echo "xl_console_marker_lines=$(grep -c "${MARKER}" /tmp/hvm-console.out)"
head -n 3 /tmp/hvm-console.out | awk 1
if [ "${TOOL}" != xl ]; then
    # The tool's own serial console reader.
    echo "--- ${TOOL} console -t serial (10 s)"
    timeout 10 "${TOOL}" console -t serial "${NAME}" </dev/null >/tmp/hvm-console-tool.out 2>&1
    echo "tool_console_rc=$?"
    echo "tool_console_marker_lines=$(grep -c "${MARKER}" /tmp/hvm-console-tool.out)"
    head -n 3 /tmp/hvm-console-tool.out | awk 1
fi
echo "xenconsoled_marker_lines=$(console_count "${NAME}" "${MARKER}")"
echo "state=$(dom_state "${NAME}")"
echo "--- xl dmesg (d${domid})"
xl dmesg | grep "(d${domid})" | tail -n 60
dm_facts "${domid}" "${NAME}"
destroy_and_list "${TOOL}" "${NAME}" "${domid}" /e2e/hvm/boot.img

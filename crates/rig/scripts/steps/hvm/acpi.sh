# Step hvm, an ACPI power-off: TOOL creates an HVM guest without PV drivers whose boot
# sector powers the guest off when it sees the ACPI power button (printing BUTTON on port
# 0xe9 first). Once it runs (MARKER on Xen's console), `TOOL shutdown -F` must send the
# button (no PV control: -F falls back to the ACPI event), the guest must power off and
# on_poweroff = "destroy" must leave no domain, QEMU, socket, xenstore node or interface.
# Set by the rig: TOOL, NAME, CFG, IMG, MARKER, BUTTON, MARKER_S.
# shellcheck source=lib.sh
. /e2e/lib.sh
create_or_explain "${TOOL}" "${CFG}" "${NAME}" || exit 1
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
pid=$(xenstore-read "/local/domain/${domid}/image/device-model-pid" 2>/dev/null)
vm=$(xenstore-read "/local/domain/${domid}/vm" 2>/dev/null)
echo "dm_pid=${pid:-none}"
note "${NAME}: created, waiting for its marker"
t0=$(now_ms)
if ! dmesg_wait "${domid}" "${MARKER}" "${MARKER_S}" "${NAME}"; then
    echo "marker_s=none"
    timeout 60 "${TOOL}" destroy "${NAME}"
    exit 1
fi
echo "marker_s=$((($(now_ms) - t0) / 1000))"
note "${NAME}: running, ${TOOL} shutdown -F"
t0=$(now_ms)
timeout 30 "${TOOL}" shutdown -F "${NAME}" >/tmp/acpi-shutdown.out 2>&1
echo "shutdown_rc=$?"
head -n 3 /tmp/acpi-shutdown.out | cut -c1-300
gone=1
gone_after "${NAME}" "${t0}" 90 || gone=
echo "button_lines=$(xl dmesg | grep -c "(d${domid}) .*${BUTTON}")"
if [ -z "${gone}" ]; then
    echo "state=$(dom_state "${NAME}")"
    timeout 60 "${TOOL}" destroy "${NAME}"
fi
# The toolstack's cleanup ends after the domain is gone.
settle_leftovers "${domid}" "${IMG}" "${pid}" "${vm}"
echo "--- leftovers"
leftovers "${domid}" "${IMG}"
dm_leftovers "${domid}" "${pid}" "${vm}"
echo "--- leftovers end"

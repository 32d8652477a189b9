# Step hvm, a device model that dies: rxl creates an HVM guest (on_crash = "destroy",
# no PV drivers). First `rxl shutdown` without -F must be refused (no PV control), as xl
# refuses it, and the ACPI sleep button must be sent (`rxl trigger NAME sleep`, then
# xl's; the boot sector ignores it; the power button is acpi.sh's, as it powers the guest
# off). Then its QEMU is killed with SIGKILL: the host monitor must take that for a crash
# (its log line), and on_crash = "destroy" must leave no domain, QEMU, socket, xenstore
# node or interface.
# Set by the rig: NAME, CFG, IMG.
# shellcheck source=lib.sh
. /e2e/lib.sh
create_or_explain rxl "${CFG}" "${NAME}" || exit 1
domid=$(xl domid "${NAME}") || exit 1
echo "domid=${domid}"
timeout 30 rxl shutdown "${NAME}" >/tmp/dmcrash-shutdown.out 2>&1
echo "shutdown_rc=$?"
echo "shutdown_hint=$(grep -c -e 'use -F' /tmp/dmcrash-shutdown.out)"
head -n 3 /tmp/dmcrash-shutdown.out | cut -c1-300
timeout 30 xl shutdown "${NAME}" >/tmp/dmcrash-xl-shutdown.out 2>&1
echo "xl_shutdown_rc=$?"
head -n 3 /tmp/dmcrash-xl-shutdown.out | cut -c1-300
timeout 30 rxl trigger "${NAME}" sleep
echo "trigger_rc=$?"
timeout 30 xl trigger "${NAME}" sleep
echo "xl_trigger_rc=$?"
sleep 2
echo "state_after_trigger=$(dom_state "${NAME}")"
pid=$(xenstore-read "/local/domain/${domid}/image/device-model-pid" 2>/dev/null)
vm=$(xenstore-read "/local/domain/${domid}/vm" 2>/dev/null)
echo "dm_pid=${pid:-none}"
[ -n "${pid}" ] || exit 1
t0=$(now_ms)
kill -9 "${pid}"
gone_after "${NAME}" "${t0}" 60
# The monitor's cleanup ends after the domain is gone.
settle_leftovers "${domid}" "${IMG}" "${pid}" "${vm}"
echo "--- monitord log (domain ${domid})"
grep -F "domain ${domid}" /var/log/rxl/monitord.log | tail -n 10 | cut -c1-300
echo "crash_logged=$(grep -c -F "device model of domain ${domid} (pid ${pid}) exited: treating as a crash" /var/log/rxl/monitord.log)"
echo "--- leftovers"
leftovers "${domid}" "${IMG}"
dm_leftovers "${domid}" "${pid}" "${vm}"
echo "--- leftovers end"

# Step hvm, device model failures: rxl creates an HVM guest (with a vif on xenbr0) whose
# device_model_override is a program that does not exist (CASE=missing) or one that exits
# at once (CASE=exits). The create must fail naming the device model (its command line and
# log), and leave no domain, QEMU process, QMP socket, xenstore node, tap or vif.
# Set by the rig: NAME, CFG, CASE, IMG.
# shellcheck source=lib.sh
. /e2e/lib.sh
echo "case=${CASE}"
t0=$(now_ms)
timeout 180 rxl create "${CFG}" >/tmp/dmfail.out 2>&1
echo "create_rc=$?"
echo "create_ms=$(($(now_ms) - t0))"
echo "--- rxl create's output"
head -n 40 /tmp/dmfail.out
echo "--- output end"
domid=$(grep -o -e '-xen-domid [0-9]*' /tmp/dmfail.out | head -n 1 | cut -d' ' -f2)
echo "failed_domid=${domid:-none}"
echo "--- leftovers"
xl list | awk 'NR > 1 { print $1 }' | grep -x -F "${NAME}" | sed 's/^/leftover: domain /'
qemu_procs | grep -F -e "-name ${NAME} " | sed 's/^/leftover: qemu /'
if [ -n "${domid}" ]; then
    leftovers "${domid}" "${IMG}"
    dm_leftovers "${domid}" "" ""
fi
# Whatever the domid: no tap of an emulated NIC is left on the host.
/bin/ip -o link show | grep -o 'vif[0-9]*\.[0-9]*-emu' | sort -u | sed 's/^/leftover: interface /'
echo "--- leftovers end"

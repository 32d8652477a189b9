# Step pv: configs rxl must refuse before any domain exists (a PVH-only kernel given
# type = "pv", an ELF that is not a Xen kernel), with the domain count, dom0's xenstore
# domain list and rxl's records the same before and after.
# Set by the rig: CFGS (config paths, a list of words).
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
snapshot() {
    echo "domains=$(xl list | tail -n +2 | wc -l) xs=$(xenstore-list /local/domain | tr '\n' ' ') records=$(find /var/lib/rxl -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)"
}
before=$(snapshot)
for c in ${CFGS}; do
    echo "--- $c"
    timeout 60 rxl create "$c" 2>&1
    echo "rc=$?"
done
after=$(snapshot)
echo "before: ${before}"
echo "after: ${after}"
[ "${before}" = "${after}" ] && echo "nothing_left=yes"
exit 0

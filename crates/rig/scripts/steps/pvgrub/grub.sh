# Steps pvgrub and pv: GRUB_CFG (firmware = "pvgrub" or "pvgrub64") starts GRUB, whose
# banner or prompt reaches the PV console log; then rxl destroy.
# Set by the rig: GRUB_NAME, GRUB_CFG.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
log=/var/log/xen/console/guest-${GRUB_NAME}.log
t0=$(now_ms)
timeout 120 rxl create "${GRUB_CFG}" || exit 1
i=0
until grep -a -q -E 'GRUB|grub>' "$log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ]; then echo "no GRUB output after 120 s (state $(dom_state "${GRUB_NAME}"))"; break; fi
    case $(dom_state "${GRUB_NAME}") in gone|*c*) echo "${GRUB_NAME} died: $(dom_state "${GRUB_NAME}")"; break ;; esac
    sleep 0.2
done
echo "grub_ms=$(( $(now_ms) - t0 ))"
echo "== console"
tr -d '\033\r' <"$log" | grep -a -o -E '[A-Za-z !]*GRUB[A-Za-z0-9 .!~]*|grub>' | head -n 5
echo "== end"
timeout 60 rxl destroy "${GRUB_NAME}"
rc=$?
echo "state=$(dom_state "${GRUB_NAME}")"
exit $rc

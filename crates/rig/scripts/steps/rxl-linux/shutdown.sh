# Step rxl-linux: rxl shutdown -w returns once the domain is gone.
# Set by the rig: LINUX_NAME.
# shellcheck source=lib.sh
. /e2e/lib.sh
rxl shutdown -w --timeout 120 "${LINUX_NAME}"
rc=$?
echo "state=$(dom_state "${LINUX_NAME}")"
exit $rc

# Step rxl-linux: rxl pause and unpause, with the state xl list shows after each.
# Set by the rig: LINUX_NAME.
# shellcheck source=lib.sh
. /e2e/lib.sh
rxl pause "${LINUX_NAME}" || exit 1
echo "paused=$(dom_state "${LINUX_NAME}")"
rxl list "${LINUX_NAME}"
rxl unpause "${LINUX_NAME}" || exit 1
echo "unpaused=$(dom_state "${LINUX_NAME}")"

# Step rxl-hello: rxl create -p of the test guest, run from another directory.
# Set by the rig: CFG (the config in the image), RXL_HELLO (the guest's name).
cd /tmp || exit 1
rxl create -p "${CFG}" || exit 1
echo "domid=$(rxl domid "${RXL_HELLO}")"

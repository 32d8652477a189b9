# Step bootloader, a fact about xl: `firmware = "pvgrub"` (rxl's name for Debian's GRUB for
# PVH) in xl 4.17 becomes the kernel /usr/lib/xen-4.17/boot/pvgrub.bin, which Debian does
# not ship. Recorded, not judged; a domain it made is destroyed.
# Set by the rig: NAME, CFG.
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
timeout 60 xl create "${CFG}" >/tmp/blstep/firmware.out 2>&1
echo "xl_firmware_rc=$?"
tail -n 6 /tmp/blstep/firmware.out
timeout 60 xl destroy "${NAME}" >/dev/null 2>&1 && echo "xl made the domain; destroyed now"
exit 0

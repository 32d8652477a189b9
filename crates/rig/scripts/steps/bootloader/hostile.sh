# Step bootloader, hostile disks: each case creates a guest whose disk's grub.cfg points
# outside the file system, whose kernel is a symlink to an absolute dom0 path, or whose
# kernel is larger than the bootloaders' cap. Every create must fail; what dom0 holds after
# it and did not before (domains, xenstore directories under /local/domain and /libxl, loop
# devices, files under the tools' state and run directories and /tmp) is listed as
# "leftover:" lines. The host judges rxl's cases and reports xl's.
# Set by the rig: CASES (words TOOL:NAME:CFG), IMAGES (words SRC:DST).
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
for pair in ${IMAGES}; do
    mkdir -p "$(dirname "${pair#*:}")"
    cp "${pair%%:*}" "${pair#*:}" || exit 1
done
# snapshot: one line per thing a failed create might leave.
snapshot() {
    xl list | awk 'NR > 1 { print "domain " $1 " id " $2 }'
    for dir in /local/domain /libxl; do
        for id in $(xenstore-list "$dir" 2>/dev/null); do
            echo "xenstore $dir/$id"
        done
    done
    /sbin/losetup -a | sed 's/^/loop /'
    find /var/lib/rxl /var/lib/xen /run/xen /run/rxl -mindepth 1 -maxdepth 2 2>/dev/null | sed 's/^/file /'
    find /tmp -mindepth 1 -maxdepth 1 ! -name blstep ! -name capture.out 2>/dev/null | sed 's/^/file /'
}
for c in ${CASES}; do
    tool=${c%%:*}
    rest=${c#*:}
    name=${rest%%:*}
    cfg=${rest#*:}
    note "hostile ${name}"
    echo "--- case ${name}"
    snapshot | sort >/tmp/blstep/before
    t0=$(now_ms)
    timeout 150 "${tool}" create "${cfg}" >/tmp/blstep/hostile.out 2>&1
    rc=$?
    echo "hostile_ms=$(($(now_ms) - t0))"
    tail -n 12 /tmp/blstep/hostile.out
    echo "hostile_rc=$rc"
    # The bootloader's own log of this create (libxl's and rxl's are both named so).
    find /var/log/xen -maxdepth 1 -name 'bootloader.*.log' -newer /tmp/blstep/before 2>/dev/null |
        while read -r f; do
            # pygrub draws its menu with curses into the log: its tail ends each line.
            tail -n 3 "$f" | tr -d '\033\r' |
                awk -v p="log ${f##*/}: " '{ print p substr($0, length($0) > 160 ? length($0) - 159 : 1) }'
        done
    if timeout 60 "${tool}" destroy "${name}" >/dev/null 2>&1; then
        echo "leftover: domain ${name} (destroyed now)"
    fi
    snapshot | sort >/tmp/blstep/after
    grep -v -x -F -f /tmp/blstep/before /tmp/blstep/after | sed 's/^/leftover: /'
done
echo "--- end"

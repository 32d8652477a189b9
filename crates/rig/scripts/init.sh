#!/bin/busybox sh
# dom0 /init of the rxl end-to-end rig. The rig fills in the LIBDIRS, MODE and MODULES
# placeholders (each between at signs).
#
# Results go to a channel of their own: the second serial port (/dev/ttyS1, a file on the
# host) when dom0 sees it, else the console. Xen's own lines never reach that port.

/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/usr/lib/xen-4.17/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=@LIBDIRS@
export HOME=/root TERM=vt100
# shell: a dom0 shell on the console instead of the scenario; run: the scenario.
RIG_MODE=@MODE@

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
# What udev would make and devtmpfs does not: Xen's hotplug scripts (locking.sh) stat
# /dev/stdin.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -sf /run /var/run
mkdir -p /run/xen /run/xenstored /var/log/xen/console /var/lib/xen /var/lib/xenstored
# Below error level, kernel messages stay in dmesg; errors, oopses and panics still reach
# the console (and so the serial log).
dmesg -n 4

# Open the result channel once as fd 3 (every step inherits it).
if [ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 115200 2>/dev/null; then
    exec 3>/dev/ttyS1
    echo "rxl-e2e: results on /dev/ttyS1"
else
    exec 3>/dev/console
    echo "rxl-e2e: results on the console"
fi

# shellcheck source=lib.sh
. /e2e/lib.sh

setup_failed() {
    echo "@@RXL-SETUP-FAILED $*" >&3
    echo "--- dmesg (last 40 lines)" >&3
    dmesg | tail -n 40 >&3
    echo "@@RXL-SETUP-FAILED $*"
    if [ "$RIG_MODE" = shell ]; then
        echo "rxl-e2e: setup failed; dropping to a shell anyway"
        setsid cttyhack sh
    fi
    rig_exit 2
}

@MODULES@

mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || setup_failed "mount xenfs on /proc/xen"

XENSTORED_ROOTDIR=/var/lib/xenstored xenstored --pid-file /run/xenstore.pid \
    || setup_failed "xenstored did not start"
i=0
until xenstore-read -s / >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -gt 30 ] && setup_failed "xenstored did not answer within 30 s"
    sleep 1
done
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 \
    || setup_failed "xen-init-dom0: $(tail -n 3 /tmp/xen-init-dom0.log)"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console \
    || setup_failed "xenconsoled did not start"

# Guest networking: the bridge xenbr0 (vif-bridge adds each vif to it), with IPv6
# link-local addresses only. Its MAC is fixed (vifs are fe:ff:ff:ff:ff:ff, which the bridge
# would otherwise take), no router advertisement is accepted (so no routable address can
# appear), and interfaces made later (the vifs) have no IPv6 of their own. Nothing in dom0
# assigns IPv4 addresses.
mkdir -p /run/xen-hotplug /var/log/xen
/bin/ip link add name xenbr0 address 02:00:00:00:0b:01 type bridge forward_delay 0 stp_state 0 \
    || setup_failed "ip link add xenbr0 type bridge"
for c in xenbr0 default; do
    echo 0 >"/proc/sys/net/ipv6/conf/$c/accept_ra"
    echo 0 >"/proc/sys/net/ipv6/conf/$c/autoconf"
done
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
/bin/ip link set dev xenbr0 up || setup_failed "ip link set xenbr0 up"

echo "@@RXL-READY" >&3
echo "rxl-e2e: dom0 ready"

if [ "$RIG_MODE" = shell ]; then
    echo "rxl-e2e: dom0 shell. Scenario: sh /e2e/scenario.sh; leave with: rig-exit"
    setsid cttyhack sh
    rig_exit 0
fi

sh /e2e/scenario.sh
echo "@@RXL-DONE" >&3
rig_exit 0

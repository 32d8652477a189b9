#!/bin/busybox sh
# /init of the Linux guest: mounts the kernel file systems, loads the PV device drivers when
# the command line says rxl_devices (the list is /etc/rxl-modules, dependencies first),
# reports the CPUs it sees, then reads its console line by line: "RXL-RUN ID CMD" runs CMD
# with sh and answers "RXL-OUT ID line" for each output line, then "RXL-RC ID STATUS";
# any other line is answered with "RXL-ECHO line".
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
if grep -q -w rxl_devices /proc/cmdline; then
    while read -r m; do
        insmod "$m" || echo "RXL-INSMOD-FAILED $m"
    done </etc/rxl-modules
fi
echo "RXL-LINUX-INIT cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)"
while read -r line; do
    case $line in
        "RXL-RUN "*)
            rest=${line#RXL-RUN }
            id=${rest%% *}
            out=$(sh -c "${rest#* }" 2>&1)
            rc=$?
            [ -n "$out" ] && printf '%s\n' "$out" | sed "s/^/RXL-OUT $id /"
            echo "RXL-RC $id $rc"
            ;;
        *) echo "RXL-ECHO $line" ;;
    esac
done
while true; do sleep 3600; done

#!/bin/busybox sh
# /init of the Linux guest: mounts the kernel file systems, reports the CPUs it sees, then
# answers each line typed on its console with "RXL-ECHO line".
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "RXL-LINUX-INIT cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)"
while read -r line; do echo "RXL-ECHO $line"; done
while true; do sleep 3600; done

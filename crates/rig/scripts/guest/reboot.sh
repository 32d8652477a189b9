#!/bin/busybox sh
exec /bin/busybox reboot -f

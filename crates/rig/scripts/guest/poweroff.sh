#!/bin/busybox sh
exec /bin/busybox poweroff -f

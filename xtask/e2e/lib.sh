# Shell helpers of the rxl end-to-end rig, sourced by /init and /e2e/scenario.sh.
# Results are written to fd 3, the result channel that /init opened.

# Ends QEMU through isa-debug-exit (port 0xf4): QEMU exits with (value << 1) | 1.
rig_exit() {
    sync
    printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    sleep 2
    poweroff -f
}

# rxl_capture NAME SECS SCRIPT: runs SCRIPT with sh (stdout and stderr together, no stdin,
# at most SECS seconds) and frames its output and exit status on the result channel.
rxl_capture() {
    echo "@@RXL-BEGIN $1" >&3
    echo "rxl-e2e: step $1"
    timeout "$2" sh "$3" >/tmp/capture.out 2>&1 </dev/null 3>&-
    rc=$?
    # awk adds the final newline a command may leave out, so END starts its own line.
    awk 1 /tmp/capture.out >&3
    echo "@@RXL-END $1 rc=$rc" >&3
}

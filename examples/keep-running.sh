#!/bin/sh
# keep-running.sh NAME CFG: keeps the guest NAME running, creating it from CFG now if it is
# not running and again whenever rxl's event stream says it was destroyed or crashed.
#
# It reads `rxl events --json` (one JSON object per line, docs/operations.md) with the
# shell's own `case` patterns and sed: no jq or python is needed. That works because rxl
# writes each event on one line with its keys in a fixed order and without spaces; the
# guest's name must then have no `"` or `\` (JSON would escape them), which it checks.
#
# A guest that rxl's monitor restarts (on_reboot = "restart") is not created twice:
# `rxl domid NAME` waits while the monitor restarts a name, so the check below finds the
# new domain. A guest kept after a crash (on_crash = "preserve") is destroyed first.
#
# RXL names the rxl command (default: rxl); RXL_SIM, when set, is the simulated host it
# uses. Stop it with Ctrl-C or SIGTERM to its process group.
set -u

RXL=${RXL:-rxl}

if [ "$#" -ne 2 ]; then
    echo "usage: keep-running.sh NAME CFG" >&2
    exit 2
fi
name=$1
cfg=$2
case $name in
    *'"'* | *\\*)
        echo "keep-running: a name with \" or \\ is not supported: $name" >&2
        exit 2
        ;;
esac

log() {
    echo "keep-running: $*" >&2
}

# Create the guest unless a domain carries its name.
ensure() {
    if "$RXL" domid "$name" >/dev/null 2>&1; then
        return 0
    fi
    log "$name is not running: creating it from $cfg"
    if domid=$("$RXL" create "$cfg"); then
        log "$name is domain $domid"
    else
        log "creating $name failed; trying again at its next event"
    fi
}

ensure
"$RXL" events --json | while IFS= read -r line; do
    case $line in
        *"\"name\":\"$name\","* | *"\"name\":\"$name\"}"*) ;;
        *) continue ;;
    esac
    case $line in
        *'"event":"destroyed"'*)
            ensure
            ;;
        *'"event":"crashed"'*)
            domid=$(printf '%s\n' "$line" | sed -n 's/.*"domid":\([0-9][0-9]*\).*/\1/p')
            log "$name (domain $domid) crashed"
            # Kept after the crash (on_crash = "preserve"): clear it. When the monitor has
            # destroyed or restarted it already, this finds nothing.
            "$RXL" destroy "$domid" >/dev/null 2>&1
            ensure
            ;;
    esac
done

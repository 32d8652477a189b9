# Shell helpers of the rxl end-to-end rig, sourced by /init and /e2e/scenario.sh.
# Results are written to fd 3, the result channel that /init opened.

# Ends QEMU through isa-debug-exit (port 0xf4): QEMU exits with (value << 1) | 1.
rig_exit() {
    sync
    # The format is the byte itself (an octal escape built from $1).
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    sleep 2
    poweroff -f
}

# rxl_capture NAME SECS SCRIPT: runs SCRIPT with sh (stdout and stderr together, no stdin,
# at most SECS seconds) and frames its output and exit status on the result channel.
# The output goes to a file first (a daemon a snippet starts may keep its stdout open);
# SCRIPT gets the result channel as fd 4 for `note`.
rxl_capture() {
    echo "@@RXL-BEGIN $1" >&3
    echo "rxl-e2e: step $1"
    timeout "$2" sh "$3" >/tmp/capture.out 2>&1 </dev/null 4>&3 3>&-
    rc=$?
    # awk adds the final newline a command may leave out, so END starts its own line.
    awk 1 /tmp/capture.out >&3
    # How many dom0 processes have died of a fault so far (the host ties them to steps).
    echo "@@RXL-NOTE faults=$(dmesg | grep -c -E 'segfault at|general protection')" >&3
    echo "@@RXL-END $1 rc=$rc" >&3
}

# note TEXT: a progress line on the result channel while a capture runs (fd 4, which
# rxl_capture opens; silently nothing elsewhere). The host sees that dom0 is alive, and a
# capture that never ends still shows how far it got.
note() {
    { echo "@@RXL-NOTE $*" >&4; } 2>/dev/null
}

# now_ms: milliseconds since boot (from /proc/uptime, 10 ms resolution).
now_ms() {
    read -r up _ </proc/uptime
    echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 ))
}

# console_count NAME TEXT: how many lines of NAME's console log (xenconsoled) contain TEXT.
# (grep is run again when it dies of a signal: dom0's processes sometimes fault under
# emulation, see docs/e2e.md.)
console_count() {
    _cc_f=/var/log/xen/console/guest-$1.log
    [ -f "$_cc_f" ] || { echo 0; return; }
    for _cc_try in 1 2 3; do
        _cc_n=$(grep -a -c -F "$2" "$_cc_f")
        [ $? -le 1 ] && { echo "$_cc_n"; return; }
    done
    echo 0
}

# dom_state NAME: the State column of NAME's `xl list` row, "gone" when xl lists no such
# domain, or "unknown" when xl list itself failed.
dom_state() {
    if ! _ds_out=$(xl list 2>/dev/null) || [ -z "$_ds_out" ]; then
        echo unknown
        return
    fi
    _ds_s=$(echo "$_ds_out" | awk -v n="$1" '$1 == n { print $5 }')
    echo "${_ds_s:-gone}"
}

# wait_console NAME TEXT COUNT SECS: waits until at least COUNT lines of NAME's console log
# contain TEXT (0), the domain is gone or crashed (2), or SECS seconds pass (1).
# "Gone" means no domain of that name for 15 s: a guest that triple-faults shuts down as
# "reboot", and with on_reboot = "restart" the toolstack builds it again under the same
# name (which takes some seconds under emulation); that one may still get there.
# (Shell functions share the caller's variables: these use names of their own.)
wait_console() {
    _wc_i=0
    _wc_gone=
    while [ "$(console_count "$1" "$2")" -lt "$3" ]; do
        # xl list costs dom0 more than grep: look at the state once a second.
        if [ $((_wc_i % 5)) = 0 ]; then
            case $(dom_state "$1") in
                gone)
                    _wc_now=$(now_ms)
                    [ -n "$_wc_gone" ] && [ $((_wc_now - _wc_gone)) -ge "${RXL_GONE_MS:-15000}" ] && return 2
                    _wc_gone=${_wc_gone:-$_wc_now} ;;
                *c*) return 2 ;;
                *) _wc_gone= ;;
            esac
        fi
        _wc_i=$((_wc_i + 1))
        [ "$_wc_i" -gt $(($4 * 5)) ] && return 1
        sleep 0.2
    done
    return 0
}

# guest_run NAME SECS CMD: runs the shell command CMD in the Linux guest NAME through its
# PV console (written to the console's pty, answered in xenconsoled's log: the guest's /init
# answers "RXL-RUN ID CMD" with one "RXL-OUT ID line" per output line and "RXL-RC ID STATUS").
# Prints CMD's output and returns its status: 124 when no answer came within SECS seconds,
# 125 when the domain or its console pty was not found.
guest_run() {
    _gr_n=$((${_gr_n:-0} + 1))
    _gr_id="$(now_ms)x${_gr_n}"
    _gr_log=/var/log/xen/console/guest-$1.log
    _gr_dom=$(xl domid "$1" 2>/dev/null) || return 125
    _gr_tty=$(xenstore-read "/local/domain/$_gr_dom/console/tty" 2>/dev/null) || return 125
    printf 'RXL-RUN %s %s\n' "$_gr_id" "$3" >"$_gr_tty" || return 125
    _gr_i=0
    until grep -a -q "RXL-RC $_gr_id " "$_gr_log" 2>/dev/null; do
        _gr_i=$((_gr_i + 1))
        [ "$_gr_i" -gt $(($2 * 5)) ] && return 124
        sleep 0.2
    done
    tr -d '\r' <"$_gr_log" | sed -n "s/^.*RXL-OUT $_gr_id //p"
    _gr_rc=$(tr -d '\r' <"$_gr_log" | sed -n "s/^.*RXL-RC $_gr_id \([0-9]*\).*/\1/p" | tail -n 1)
    return "${_gr_rc:-125}"
}

# leftovers DOMID IMAGE: one "leftover: ..." line for each thing of the (destroyed) domain
# DOMID still present: its xenstore directories (backends, /libxl, its own), a vifDOMID.N
# interface, a loop device bound to IMAGE.
leftovers() {
    for _lo_p in "/local/domain/0/backend/vbd/$1" "/local/domain/0/backend/vif/$1" \
        "/libxl/$1" "/local/domain/$1"; do
        xenstore-exists "$_lo_p" 2>/dev/null && echo "leftover: xenstore $_lo_p"
    done
    /bin/ip -o link show | grep -o "vif$1\.[0-9]*" | sort -u | sed 's/^/leftover: interface /'
    /sbin/losetup -a | grep -F "$2" | sed 's/^/leftover: loop /'
    return 0
}

# use_hotplug MODE: the hotplug path rxl takes on this host from now on: "native" writes
# /etc/rxl/rxl.conf with hotplug = "native"; anything else removes the file (rxl's default,
# Xen's scripts). xl does not read the file.
use_hotplug() {
    if [ "$1" = native ]; then
        mkdir -p /etc/rxl && printf 'hotplug = "native"\n' >/etc/rxl/rxl.conf
    else
        rm -f /etc/rxl/rxl.conf
    fi
}

# dev_lists NAME TAG TOOL...: each TOOL's block-list and network-list of the domain NAME,
# each under a "--- TOOL block-list TAG" heading and followed by TOOL_block_list_rc=N (the
# same for network-list); for rxl also the --json forms.
dev_lists() {
    _dl_name=$1
    _dl_tag=$2
    shift 2
    for _dl_t in "$@"; do
        for _dl_kind in block network; do
            echo "--- ${_dl_t} ${_dl_kind}-list ${_dl_tag}"
            timeout 60 "${_dl_t}" "${_dl_kind}-list" "${_dl_name}"
            echo "${_dl_t}_${_dl_kind}_list_rc=$?"
            if [ "${_dl_t}" = rxl ]; then
                echo "--- rxl ${_dl_kind}-list --json ${_dl_tag}"
                timeout 60 rxl "${_dl_kind}-list" --json "${_dl_name}"
                echo "rxl_${_dl_kind}_list_json_rc=$?"
            fi
        done
    done
    echo "--- lists end"
}

# The hotplug scripts the devices step counts: prepare.sh puts a wrapper in the place of each,
# which appends "SCRIPT ARGS" to hotplug_calls_log and runs the real one (SCRIPT.real).
# (Read by the scripts that source this file.)
# shellcheck disable=SC2034
hotplug_counted="block vif-bridge"
hotplug_calls_log=/run/rxl-hotplug-calls

# hotplug_calls: how many runs of the counted hotplug scripts there have been so far.
hotplug_calls() {
    if [ -f "${hotplug_calls_log}" ]; then
        wc -l <"${hotplug_calls_log}" | tr -d ' '
    else
        echo 0
    fi
}

# qemu_procs: "PID ARGS" of each running QEMU for Xen (the device models), from /proc.
qemu_procs() {
    for _qp_d in /proc/[0-9]*; do
        # (A process may end between the glob and the read: no message for it.)
        _qp_a=$({ tr '\0' ' ' <"${_qp_d}/cmdline"; } 2>/dev/null) || continue
        case ${_qp_a} in
            *xen-qemu-system*) echo "${_qp_d#/proc/} ${_qp_a}" ;;
        esac
    done
}

# dm_facts DOMID NAME: what the toolstack set up for the device model (QEMU) of domain DOMID
# named NAME, each under a "--- " heading: its pid (image/device-model-pid) and exact
# command line and XEN* environment (from /proc), the QEMU processes, its log, the QMP
# sockets, and the xenstore nodes of the domain, of its device model, of the toolstack
# (/libxl/DOMID, /vm/UUID) and of its disk backends.
dm_facts() {
    _df_pid=$(xenstore-read "/local/domain/$1/image/device-model-pid" 2>/dev/null)
    echo "dm_pid=${_df_pid:-none}"
    echo "--- device model command line"
    if [ -n "${_df_pid}" ] && [ -r "/proc/${_df_pid}/cmdline" ]; then
        tr '\0' ' ' <"/proc/${_df_pid}/cmdline"
        echo
        echo "--- device model environment (XEN*)"
        tr '\0' '\n' <"/proc/${_df_pid}/environ" | grep '^XEN'
    fi
    echo "--- qemu processes"
    qemu_procs
    echo "--- /var/log/xen/qemu-dm-$2.log"
    cat "/var/log/xen/qemu-dm-$2.log" 2>/dev/null
    echo "--- /var/run/xen"
    ls -l /var/run/xen/ 2>/dev/null
    for _df_p in "/local/domain/$1" "/local/domain/0/device-model/$1" "/libxl/$1" \
        "$(xenstore-read "/local/domain/$1/vm" 2>/dev/null)" \
        "/local/domain/0/backend/qdisk/$1" "/local/domain/0/backend/vbd/$1"; do
        if [ -z "${_df_p}" ] || ! xenstore-exists "${_df_p}" 2>/dev/null; then
            continue
        fi
        echo "--- xenstore ${_df_p}"
        xenstore-ls -f "${_df_p}" 2>&1
    done
    echo "--- device model facts end"
}

# wait_pid_gone PID SECS: waits until process PID is gone (0) or SECS seconds pass (1); an
# empty PID is gone.
wait_pid_gone() {
    [ -n "$1" ] || return 0
    _wp_i=0
    while [ -d "/proc/$1" ]; do
        _wp_i=$((_wp_i + 1))
        [ "${_wp_i}" -gt $(($2 * 5)) ] && return 1
        sleep 0.2
    done
    return 0
}

# dm_leftovers DOMID PID VMPATH: one "leftover: ..." line for each piece of the device model
# of the (destroyed) domain DOMID still present: the process PID or any QEMU given
# -xen-domid DOMID, its QMP sockets, its xenstore directories (and VMPATH, /vm/UUID), a tap
# interface of the emulated NIC.
dm_leftovers() {
    if [ -n "$2" ] && [ -d "/proc/$2" ]; then
        echo "leftover: device model pid $2 ($(tr '\0' ' ' <"/proc/$2/cmdline" | cut -c1-100))"
    fi
    qemu_procs | grep -e " -xen-domid $1 " | sed 's/^/leftover: qemu /'
    for _dl_s in "/var/run/xen/qmp-libxl-$1" "/var/run/xen/qmp-libxenstat-$1"; do
        [ -e "${_dl_s}" ] && echo "leftover: socket ${_dl_s}"
    done
    for _dl_p in "/local/domain/0/device-model/$1" "/local/domain/0/backend/qdisk/$1" $3; do
        xenstore-exists "${_dl_p}" 2>/dev/null && echo "leftover: xenstore ${_dl_p}"
    done
    /bin/ip -o link show | grep -o "tap$1\.[0-9]*\|vif$1\.[0-9]*-emu" | sort -u | sed 's/^/leftover: interface /'
    return 0
}

# create_or_explain TOOL CFG NAME: TOOL creates the guest of CFG (at most 180 s), printing
# create_rc= and create_ms=; when that fails, also Xen's last lines, the device model's log
# and xl's log of NAME. Returns the create's status.
create_or_explain() {
    _ce_t0=$(now_ms)
    timeout 180 "$1" create "$2"
    _ce_rc=$?
    echo "create_rc=${_ce_rc}"
    echo "create_ms=$(($(now_ms) - _ce_t0))"
    if [ "${_ce_rc}" != 0 ]; then
        echo "--- xl dmesg (last lines)"
        xl dmesg | tail -n 40
        echo "--- /var/log/xen/qemu-dm-$3.log"
        cat "/var/log/xen/qemu-dm-$3.log" 2>/dev/null
        echo "--- /var/log/xen/xl-$3.log"
        tail -n 40 "/var/log/xen/xl-$3.log" 2>/dev/null
    fi
    return "${_ce_rc}"
}

# destroy_and_list TOOL NAME DOMID IMAGE: TOOL destroys NAME (destroy_rc=, destroy_ms=),
# waits up to 20 s for its device model to exit (dm_gone_ms=), and lists what is left of
# the domain (lib.sh's leftovers with IMAGE, and dm_leftovers) up to "--- leftovers end".
destroy_and_list() {
    _dd_pid=$(xenstore-read "/local/domain/$3/image/device-model-pid" 2>/dev/null)
    _dd_vm=$(xenstore-read "/local/domain/$3/vm" 2>/dev/null)
    _dd_t0=$(now_ms)
    timeout 60 "$1" destroy "$2"
    echo "destroy_rc=$?"
    echo "destroy_ms=$(($(now_ms) - _dd_t0))"
    wait_pid_gone "${_dd_pid}" 20
    echo "dm_gone_ms=$(($(now_ms) - _dd_t0))"
    echo "--- leftovers"
    leftovers "$3" "$4"
    dm_leftovers "$3" "${_dd_pid}" "${_dd_vm}"
    echo "--- leftovers end"
}

# gone_after NAME T0 SECS: waits up to SECS seconds for the domain NAME to leave xl list
# and prints gone_ms= (ms since T0, from now_ms; "none" when it stayed). Returns 0 when
# it went.
gone_after() {
    _ga_i=0
    while [ "${_ga_i}" -lt "$3" ]; do
        if ! xl list "$1" >/dev/null 2>&1; then
            echo "gone_ms=$(($(now_ms) - $2))"
            return 0
        fi
        sleep 1
        _ga_i=$((_ga_i + 1))
    done
    echo "gone_ms=none"
    return 1
}

# settle_leftovers DOMID IMAGE PID VMPATH: waits up to 20 s for the cleanup that ends
# after a domain is gone (a monitor's, a toolstack's), until leftovers and dm_leftovers
# find nothing of it.
settle_leftovers() {
    _sl_i=0
    while [ "${_sl_i}" -lt 20 ] && [ -n "$(leftovers "$1" "$2"; dm_leftovers "$1" "$3" "$4")" ]; do
        sleep 1
        _sl_i=$((_sl_i + 1))
    done
}

# dmesg_wait DOMID TEXT SECS NAME: waits until Xen's console (`xl dmesg`) has a line of
# domain DOMID ("(dDOMID) ...") holding TEXT (0), or SECS seconds pass (1); a progress
# note on NAME every 30 s.
dmesg_wait() {
    _dw_i=0
    until xl dmesg | grep -F "(d$1) " | grep -q -F "$2"; do
        _dw_i=$((_dw_i + 1))
        [ "${_dw_i}" -ge "$3" ] && return 1
        [ $((_dw_i % 30)) = 0 ] && note "$4: waiting for $2 (${_dw_i} s, state $(dom_state "$4"))"
        sleep 1
    done
    return 0
}

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rxl_global_optspecs
    string join \n v/verbose sim= h/help V/version
end

function __fish_rxl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rxl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rxl_using_subcommand
    set -l cmd (__fish_rxl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rxl -n "__fish_rxl_needs_command" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_needs_command" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace). Give it before the command, as with xl: `rxl -vv create guest.cfg`'
complete -c rxl -n "__fish_rxl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_needs_command" -s V -l version -d 'Print version'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "sim-device-model" -d 'The simulated host\'s device model, run by rxl in place of QEMU (refused on real Xen): takes QEMU\'s arguments'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "config" -d 'Read and check xl.cfg files'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "create" -d 'Create a domain from a config file (as xl create)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "destroy" -d 'Destroy a domain at once'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "shutdown" -d 'Ask a domain to power off (writes "poweroff" to its control/shutdown node)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "reboot" -d 'Ask a domain to reboot'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "trigger" -d 'Send a trigger to an HVM domain (as xl trigger): the ACPI power or sleep button, a reset, an NMI or an INIT'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "pause" -d 'Pause a domain'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "unpause" -d 'Unpause a domain'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "console" -d 'Attach to a domain\'s console (xenconsoled\'s pty, or an HVM guest\'s serial port). Ctrl-] detaches'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "bootloader" -d 'rxl\'s built-in bootloader (`bootloader = "rxl"`), with pygrub\'s command line: picks the kernel, ramdisk and args from the guest\'s disk as pygrub 4.17 does, after dropping root'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "monitord" -d 'The host monitor: applies on_poweroff/on_reboot/on_crash/on_watchdog/on_soft_reset for every domain rxl created (one per host; `create` starts it when none runs)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "info" -d 'Show the host: Xen version, capabilities, memory, CPUs (as xl info)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "list" -d 'List domains (as xl list)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "domid" -d 'Print the id of the domain called NAME'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "domname" -d 'Print the name of the domain with id ID'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "block-attach" -d 'Attach a disk to a running domain (as xl block-attach)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "block-detach" -d 'Detach a disk from a domain (as xl block-detach)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "block-list" -d 'List a domain\'s disks, in xl block-list\'s columns'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "network-attach" -d 'Attach a network interface to a running domain (as xl network-attach)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "network-detach" -d 'Detach a network interface from a domain (as xl network-detach)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "network-list" -d 'List a domain\'s network interfaces, in xl network-list\'s columns'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "events" -d 'Follow the lifecycle events (created, paused, unpaused, shutdown, crashed, restarted, destroyed, device_attached, device_detached), one line each (docs/operations.md)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "autostart" -d 'Create the guests of the autostart directory at host start-up, shut them down at host shutdown (as the xendomains service does)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "kernel-cache" -d 'Show or empty the cache of decoded kernels (rxl.conf\'s `kernel_cache`)'
complete -c rxl -n "__fish_rxl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand sim-device-model" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand sim-device-model" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand config; and not __fish_seen_subcommand_from parse check help" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand config; and not __fish_seen_subcommand_from parse check help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand config; and not __fish_seen_subcommand_from parse check help" -f -a "parse" -d 'Print the raw settings of a config file (after `+=` and last-wins)'
complete -c rxl -n "__fish_rxl_using_subcommand config; and not __fish_seen_subcommand_from parse check help" -f -a "check" -d 'Validate a config file fully. Exit 0 when valid (warnings allowed), 1 when not'
complete -c rxl -n "__fish_rxl_using_subcommand config; and not __fish_seen_subcommand_from parse check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from parse" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from parse" -l json -d 'Print JSON: {"file": ..., "settings": {...}} or {"file": ..., "errors": [...]}'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from parse" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from check" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "parse" -d 'Print the raw settings of a config file (after `+=` and last-wins)'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a config file fully. Exit 0 when valid (warnings allowed), 1 when not'
complete -c rxl -n "__fish_rxl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand create" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand create" -s p -l paused -d 'Leave the domain paused after creating it'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s c -l console -d 'Attach to the console once the domain is created'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s n -l dry-run -d 'Dry run: resolve the config and plan the boot image, touch nothing'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s F -l foreground -d 'Monitor the domain in this process (do not return until the domain is gone); the host monitor leaves it alone'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s e -l no-monitor -d 'No monitor: nothing applies on_poweroff/on_reboot/on_crash (the host monitor leaves the domain alone)'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s q -l quiet -d 'Quiet: no warnings, only errors and the result'
complete -c rxl -n "__fish_rxl_using_subcommand create" -l json -d 'Print JSON: the dry run\'s domain and layout, or {"domid": N, "name": "..."}'
complete -c rxl -n "__fish_rxl_using_subcommand create" -l times -d 'Report where the time went: the boot plan (image, decompression, bootloader) and each create step\'s wall time, hypercalls, time inside them and xenstore requests (a table on stderr; with --json, a "profile" object in the output)'
complete -c rxl -n "__fish_rxl_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand destroy" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand destroy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -l timeout -d 'With -w: give up after this many seconds (exit 1)' -r
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -s w -l wait -d 'Wait until each domain has shut down and is gone (or is kept by its on_* action)'
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -s a -l all -d 'Every domain except Domain-0'
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -s F -l force -d 'If the guest does not react to the request within a few seconds, shut it down from the hypervisor instead (SCHEDOP_remote_shutdown). An HVM guest without PV drivers (no PV control) gets the ACPI power button (shutdown) or reset (reboot) event instead, as with xl -F; without -F such a guest is refused'
complete -c rxl -n "__fish_rxl_using_subcommand shutdown" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -l timeout -d 'With -w: give up after this many seconds (exit 1)' -r
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -s w -l wait -d 'Wait until each domain has shut down and is gone (or is kept by its on_* action)'
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -s a -l all -d 'Every domain except Domain-0'
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -s F -l force -d 'If the guest does not react to the request within a few seconds, shut it down from the hypervisor instead (SCHEDOP_remote_shutdown). An HVM guest without PV drivers (no PV control) gets the ACPI power button (shutdown) or reset (reboot) event instead, as with xl -F; without -F such a guest is refused'
complete -c rxl -n "__fish_rxl_using_subcommand reboot" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand trigger" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand trigger" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand pause" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand pause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand unpause" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand unpause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand console" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand console" -s t -l type -d 'Which console: `pv` (xenconsoled\'s) or `serial` (QEMU\'s emulated serial port); the default is `serial` for an HVM guest, `pv` for the others, as xl' -r -f -a "pv\t'The PV console xenconsoled serves'
serial\t'An emulated serial port of an HVM guest (QEMU\'s pty)'"
complete -c rxl -n "__fish_rxl_using_subcommand console" -s n -l num -d 'The console\'s number (0, the first)' -r
complete -c rxl -n "__fish_rxl_using_subcommand console" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l kernel -d 'Boot this kernel (a path inside the guest) instead of a configuration file\'s entry' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l ramdisk -d 'With --kernel: the ramdisk (a path inside the guest)' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l args -d 'With --kernel the whole command line; else appended to the entry\'s' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l entry -d 'The entry to boot: an index, else a title' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l runas -d 'The uid to become before reading the disk (default: the user nobody)' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l output -d 'Where to write the chosen items' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l output-format -d 'The output format: only simple0' -r
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -l output-directory -d 'The existing directory where the kernel and ramdisk files are created' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -s q -l quiet -d 'Print nothing but errors (rxl\'s bootloader has no menu: the default entry boots)'
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -s l -l list-entries -d 'Write the boot menu instead of booting: NUL-terminated items `default N` and `title T` per entry, then an empty item (no kernel or ramdisk file is made)'
complete -c rxl -n "__fish_rxl_using_subcommand bootloader" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -l foreground -d 'Run in this process, logging to stderr, instead of starting it in the background'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -l replace -d 'Ask the running host monitor to exit (it finishes the action in progress) and take over from it'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -l detached -d 'Started by `rxl monitord` or `rxl create`: leave the caller\'s session'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Tell whether a host monitor runs: its pid, its version, how many domains it watches. Exit 0 when one runs, 1 when none does'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and __fish_seen_subcommand_from status" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and __fish_seen_subcommand_from status" -l json -d 'Print JSON: {"running": bool, "pid", "version", "domains"}'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and __fish_seen_subcommand_from help" -f -a "status" -d 'Tell whether a host monitor runs: its pid, its version, how many domains it watches. Exit 0 when one runs, 1 when none does'
complete -c rxl -n "__fish_rxl_using_subcommand monitord; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand info" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand info" -l json -d 'Print JSON'
complete -c rxl -n "__fish_rxl_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand list" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand list" -s l -l long -d 'Print JSON with each domain\'s stored config'
complete -c rxl -n "__fish_rxl_using_subcommand list" -l json -d 'Print JSON: an array of {domid, name, uuid, memory_mib, vcpus, state, cpu_time_s, ...}'
complete -c rxl -n "__fish_rxl_using_subcommand list" -s v -l verbose-columns -d 'Add the UUID, shutdown reason code and security label columns'
complete -c rxl -n "__fish_rxl_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand domid" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand domid" -l json -d 'Print JSON: {"domid": N, "name": "..."}'
complete -c rxl -n "__fish_rxl_using_subcommand domid" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand domname" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand domname" -l json -d 'Print JSON: {"domid": N, "name": "..."}'
complete -c rxl -n "__fish_rxl_using_subcommand domname" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand block-attach" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand block-attach" -l json -d 'Print JSON: the device attached'
complete -c rxl -n "__fish_rxl_using_subcommand block-attach" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand block-detach" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand block-detach" -s f -l force -d 'Remove the disk at once, without waiting for the guest to let it go (as xl -f)'
complete -c rxl -n "__fish_rxl_using_subcommand block-detach" -l json -d 'Print JSON: the device detached'
complete -c rxl -n "__fish_rxl_using_subcommand block-detach" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand block-list" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand block-list" -l json -d 'Print JSON: an array of devices'
complete -c rxl -n "__fish_rxl_using_subcommand block-list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand network-attach" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand network-attach" -l json -d 'Print JSON: the device attached'
complete -c rxl -n "__fish_rxl_using_subcommand network-attach" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand network-detach" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand network-detach" -l json -d 'Print JSON: the device detached'
complete -c rxl -n "__fish_rxl_using_subcommand network-detach" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand network-list" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand network-list" -l json -d 'Print JSON: an array of devices'
complete -c rxl -n "__fish_rxl_using_subcommand network-list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand events" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand events" -l json -d 'Print each event as the journal\'s JSON object (schema version \\"v\\":1)'
complete -c rxl -n "__fish_rxl_using_subcommand events" -l since-start -d 'Start from the oldest event the journal keeps instead of the next new one'
complete -c rxl -n "__fish_rxl_using_subcommand events" -l no-follow -d 'Print the journal\'s events and exit instead of following it (implies --since-start)'
complete -c rxl -n "__fish_rxl_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -f -a "start" -d 'Create every DIR/*.cfg, in name order; a guest whose name already runs is skipped. Exits 1 after trying them all when one failed, naming each file that did'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -f -a "stop" -d 'Shut down the guests autostart started (all domains but Domain-0 with --all), all at once; destroy those still there after the timeout'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -f -a "list" -d 'The directory\'s guests and whether each runs'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and not __fish_seen_subcommand_from start stop list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from start" -l dir -d 'The directory of guest configs (default: rxl.conf\'s autostart_dir, /etc/xen/auto)' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from start" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from stop" -l timeout -d 'Seconds to wait for the guests to shut down before destroying them' -r
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from stop" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from stop" -l all -d 'Every domain but Domain-0, not only those autostart started'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from list" -l dir -d 'The directory of guest configs (default: rxl.conf\'s autostart_dir, /etc/xen/auto)' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from list" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from list" -l json -d 'Print JSON: [{"file", "name", "running", "domid"}]'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from help" -f -a "start" -d 'Create every DIR/*.cfg, in name order; a guest whose name already runs is skipped. Exits 1 after trying them all when one failed, naming each file that did'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Shut down the guests autostart started (all domains but Domain-0 with --all), all at once; destroy those still there after the timeout'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from help" -f -a "list" -d 'The directory\'s guests and whether each runs'
complete -c rxl -n "__fish_rxl_using_subcommand autostart; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and not __fish_seen_subcommand_from list clear help" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and not __fish_seen_subcommand_from list clear help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and not __fish_seen_subcommand_from list clear help" -f -a "list" -d 'List the entries, least recently used first: hash of the compressed kernel, size, last use'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and not __fish_seen_subcommand_from list clear help" -f -a "clear" -d 'Remove every entry'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and not __fish_seen_subcommand_from list clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from list" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from list" -l json -d 'Print JSON: {"dir": ..., "max_bytes": ..., "entries": [{"hash", "size", "last_use"}]}'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from clear" -l sim -d 'Use a simulated Xen host whose state lives in DIR instead of real Xen' -r -F
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the entries, least recently used first: hash of the compressed kernel, size, last use'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Remove every entry'
complete -c rxl -n "__fish_rxl_using_subcommand kernel-cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "sim-device-model" -d 'The simulated host\'s device model, run by rxl in place of QEMU (refused on real Xen): takes QEMU\'s arguments'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "config" -d 'Read and check xl.cfg files'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "create" -d 'Create a domain from a config file (as xl create)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "destroy" -d 'Destroy a domain at once'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "shutdown" -d 'Ask a domain to power off (writes "poweroff" to its control/shutdown node)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "reboot" -d 'Ask a domain to reboot'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "trigger" -d 'Send a trigger to an HVM domain (as xl trigger): the ACPI power or sleep button, a reset, an NMI or an INIT'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "pause" -d 'Pause a domain'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "unpause" -d 'Unpause a domain'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "console" -d 'Attach to a domain\'s console (xenconsoled\'s pty, or an HVM guest\'s serial port). Ctrl-] detaches'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "bootloader" -d 'rxl\'s built-in bootloader (`bootloader = "rxl"`), with pygrub\'s command line: picks the kernel, ramdisk and args from the guest\'s disk as pygrub 4.17 does, after dropping root'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "monitord" -d 'The host monitor: applies on_poweroff/on_reboot/on_crash/on_watchdog/on_soft_reset for every domain rxl created (one per host; `create` starts it when none runs)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "info" -d 'Show the host: Xen version, capabilities, memory, CPUs (as xl info)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "list" -d 'List domains (as xl list)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "domid" -d 'Print the id of the domain called NAME'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "domname" -d 'Print the name of the domain with id ID'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "block-attach" -d 'Attach a disk to a running domain (as xl block-attach)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "block-detach" -d 'Detach a disk from a domain (as xl block-detach)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "block-list" -d 'List a domain\'s disks, in xl block-list\'s columns'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "network-attach" -d 'Attach a network interface to a running domain (as xl network-attach)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "network-detach" -d 'Detach a network interface from a domain (as xl network-detach)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "network-list" -d 'List a domain\'s network interfaces, in xl network-list\'s columns'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "events" -d 'Follow the lifecycle events (created, paused, unpaused, shutdown, crashed, restarted, destroyed, device_attached, device_detached), one line each (docs/operations.md)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "autostart" -d 'Create the guests of the autostart directory at host start-up, shut them down at host shutdown (as the xendomains service does)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "kernel-cache" -d 'Show or empty the cache of decoded kernels (rxl.conf\'s `kernel_cache`)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and not __fish_seen_subcommand_from sim-device-model config create destroy shutdown reboot trigger pause unpause console bootloader monitord info list domid domname block-attach block-detach block-list network-attach network-detach network-list events autostart kernel-cache help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "parse" -d 'Print the raw settings of a config file (after `+=` and last-wins)'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate a config file fully. Exit 0 when valid (warnings allowed), 1 when not'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from autostart" -f -a "start" -d 'Create every DIR/*.cfg, in name order; a guest whose name already runs is skipped. Exits 1 after trying them all when one failed, naming each file that did'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from autostart" -f -a "stop" -d 'Shut down the guests autostart started (all domains but Domain-0 with --all), all at once; destroy those still there after the timeout'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from autostart" -f -a "list" -d 'The directory\'s guests and whether each runs'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from kernel-cache" -f -a "list" -d 'List the entries, least recently used first: hash of the compressed kernel, size, last use'
complete -c rxl -n "__fish_rxl_using_subcommand help; and __fish_seen_subcommand_from kernel-cache" -f -a "clear" -d 'Remove every entry'

//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  rxl config check guest.cfg              validate a guest config
  rxl create -n guest.cfg --json          show the resolved domain and boot plan (dry run)
  rxl create guest.cfg memory=512         create a guest, overriding a setting
  rxl list                                list domains, as xl list does
  rxl --sim /tmp/host create guest.cfg    the same on a simulated host (no Xen needed)
  rxl shutdown -w guest                   ask a guest to power off and wait until it is gone

Exit status: 0 done, 1 error (the message says which step failed), 2 usage error, 141 the
reader of the output went away (as for a tool killed by SIGPIPE).";

/// The long help of `--sim`: the simulated host's knobs and every fault-injection name.
fn sim_help() -> String {
    format!(
        "Use a simulated Xen host whose state lives in DIR instead of real Xen. Separate rxl \
         runs with the same DIR see one host (domains, memory, xenstore, monitors).\n\n\
         The host is created on first use: RXL_SIM_MEM_MIB (default 16384) and RXL_SIM_CPUS \
         (default 4) size it.\n\n\
         Fault injection: RXL_SIM_FAIL=OP[:N][=ERRNO][,OP[:N][=ERRNO]...] makes the N-th call \
         (default the first) of operation OP in this rxl process fail with ERRNO (a name such \
         as ENOMEM, or a number; default EINVAL); OP[:N]=sleep:MS makes that call wait MS \
         milliseconds and then succeed. The host monitor `rxl create` starts does not inherit \
         RXL_SIM_FAIL; RXL_SIM_FAIL_MONITOR (same syntax) is the monitor's own. OP is one of: \
         {}.",
        sim::FAIL_OPS.join(", ")
    )
}

/// rxl: a Xen toolstack for PVH guests.
#[derive(Debug, Parser)]
#[command(name = "rxl", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Give it before the
    /// command, as with xl: `rxl -vv create guest.cfg`.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Use a simulated Xen host whose state lives in DIR instead of real Xen.
    #[arg(long, global = true, value_name = "DIR", env = "RXL_SIM", long_help = sim_help())]
    pub sim: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// rxl's commands. Each one's arguments are built only when it is the one run (or when
/// help, man pages or completions need them all). The `Args` structs below carry plain
/// comments, not doc comments: built late, a struct's doc comment would replace its
/// command's help line (the variant's doc comment).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// The simulated host's device model, run by rxl in place of QEMU (refused on real
    /// Xen): takes QEMU's arguments.
    #[command(name = "sim-device-model", hide = true)]
    SimDeviceModel {
        /// QEMU's arguments (`-xen-domid D ...`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Read and check xl.cfg files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create a domain from a config file (as xl create).
    Create(CreateArgs),
    /// Destroy a domain at once.
    Destroy {
        /// The domain (name or id).
        domain: String,
    },
    /// Ask a domain to power off (writes "poweroff" to its control/shutdown node).
    Shutdown(ShutdownArgs),
    /// Ask a domain to reboot.
    Reboot(ShutdownArgs),
    /// Send a trigger to an HVM domain (as xl trigger): the ACPI power or sleep button,
    /// a reset, an NMI or an INIT.
    Trigger {
        /// The domain (name or id).
        domain: String,
        /// power, sleep, reset, nmi or init.
        #[arg(value_parser = parse_trigger)]
        trigger: xen_host::Trigger,
        /// The vCPU (NMI and INIT).
        #[arg(default_value_t = 0)]
        vcpu: u32,
    },
    /// Pause a domain.
    Pause {
        /// The domain (name or id).
        domain: String,
    },
    /// Unpause a domain.
    Unpause {
        /// The domain (name or id).
        domain: String,
    },
    /// Attach to a domain's console (xenconsoled's pty, or an HVM guest's serial port).
    /// Ctrl-] detaches.
    Console {
        /// Which console: `pv` (xenconsoled's) or `serial` (QEMU's emulated serial port);
        /// the default is `serial` for an HVM guest, `pv` for the others, as xl.
        #[arg(short = 't', long = "type", value_enum)]
        kind: Option<crate::console::ConsoleKind>,
        /// The console's number (0, the first).
        #[arg(short = 'n', long = "num", default_value_t = 0)]
        num: u32,
        /// The domain (name or id).
        domain: String,
    },
    /// rxl's built-in bootloader (`bootloader = "rxl"`), with pygrub's command line: picks
    /// the kernel, ramdisk and args from the guest's disk as pygrub 4.17 does, after
    /// dropping root.
    #[command(
        after_help = "Output (simple0): FILE gets the NUL-terminated items         `kernel PATH`, `ramdisk PATH` (if any), `args CMDLINE` (if any) and an empty item; the         kernel and ramdisk are files it creates in DIR. It opens the disk, FILE and those files         as root, then becomes --runas (default nobody) with no capabilities before it reads         the disk."
    )]
    Bootloader(BootloaderArgs),
    /// The host monitor: applies on_poweroff/on_reboot/on_crash/on_watchdog/on_soft_reset
    /// for every domain rxl created (one per host; `create` starts it when none runs).
    #[command(after_help = "Examples:
  rxl monitord                  start it in the background (nothing to do if one runs)
  rxl monitord --foreground     run it here, logging to stderr (systemd's ExecStart)
  rxl monitord --replace        take over from the running one (after an upgrade)
  rxl monitord status           whether one runs: pid, version, domains watched")]
    Monitord(MonitordArgs),
    /// Show the host: Xen version, capabilities, memory, CPUs (as xl info).
    Info {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List domains (as xl list).
    List(ListArgs),
    /// Print the id of the domain called NAME.
    Domid {
        /// The domain's name.
        name: String,
        /// Print JSON: {"domid": N, "name": "..."}.
        #[arg(long)]
        json: bool,
    },
    /// Print the name of the domain with id ID.
    Domname {
        /// The domain's id.
        id: u16,
        /// Print JSON: {"domid": N, "name": "..."}.
        #[arg(long)]
        json: bool,
    },
    /// Attach a disk to a running domain (as xl block-attach).
    #[command(
        name = "block-attach",
        after_help = "Examples:
  rxl block-attach guest /srv/data.img,raw,xvdb,rw
  rxl block-attach guest format=raw,vdev=xvdc,access=ro,target=/srv/iso.img
  rxl block-attach guest phy:/dev/vg/data xvdd w      (words are joined with ',', as xl does)"
    )]
    BlockAttach(BlockAttachArgs),
    /// Detach a disk from a domain (as xl block-detach).
    #[command(name = "block-detach")]
    BlockDetach(BlockDetachArgs),
    /// List a domain's disks, in xl block-list's columns.
    #[command(name = "block-list")]
    BlockList(DeviceListArgs),
    /// Attach a network interface to a running domain (as xl network-attach).
    #[command(
        name = "network-attach",
        after_help = "Examples:
  rxl network-attach guest                             xl.conf's defaults, a random MAC
  rxl network-attach guest bridge=xenbr0 mac=00:16:3e:00:00:01
  rxl network-attach guest bridge=xenbr0,mac=00:16:3e:00:00:01,mtu=9000"
    )]
    NetworkAttach(NetworkAttachArgs),
    /// Detach a network interface from a domain (as xl network-detach).
    #[command(name = "network-detach")]
    NetworkDetach(NetworkDetachArgs),
    /// List a domain's network interfaces, in xl network-list's columns.
    #[command(name = "network-list")]
    NetworkList(DeviceListArgs),
    /// Follow the lifecycle events (created, paused, unpaused, shutdown, crashed, restarted,
    /// destroyed, device_attached, device_detached), one line each (docs/operations.md).
    Events(EventsArgs),
    /// Create the guests of the autostart directory at host start-up, shut them down at
    /// host shutdown (as the xendomains service does).
    #[command(subcommand)]
    Autostart(AutostartCommand),
    /// Show or empty the cache of decoded kernels (rxl.conf's `kernel_cache`).
    #[command(subcommand, name = "kernel-cache")]
    KernelCache(KernelCacheCommand),
}

// `rxl events`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rxl events                         follow new events, one short line each
  rxl events --json --since-start    the journal's events so far, then the new ones, as JSON
  rxl events --json --no-follow      print the journal and exit")]
pub struct EventsArgs {
    /// Print each event as the journal's JSON object (schema version \"v\":1).
    #[arg(long)]
    pub json: bool,
    /// Start from the oldest event the journal keeps instead of the next new one.
    #[arg(long)]
    pub since_start: bool,
    /// Print the journal's events and exit instead of following it (implies
    /// --since-start).
    #[arg(long, conflicts_with = "since_start")]
    pub no_follow: bool,
}

impl EventsArgs {
    /// Whether to follow the journal (the default).
    pub fn follow(&self) -> bool {
        !self.no_follow
    }
}

/// `rxl autostart ...`
#[derive(Debug, Subcommand)]
pub enum AutostartCommand {
    /// Create every DIR/*.cfg, in name order; a guest whose name already runs is skipped.
    /// Exits 1 after trying them all when one failed, naming each file that did.
    Start(AutostartDirArgs),
    /// Shut down the guests autostart started (all domains but Domain-0 with --all), all
    /// at once; destroy those still there after the timeout.
    Stop(AutostartStopArgs),
    /// The directory's guests and whether each runs.
    List {
        #[command(flatten)]
        dir: AutostartDirArgs,
        /// Print JSON: [{"file", "name", "running", "domid"}].
        #[arg(long)]
        json: bool,
    },
}

// `rxl monitord`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MonitordArgs {
    /// Run in this process, logging to stderr, instead of starting it in the background.
    #[arg(long)]
    pub foreground: bool,
    /// Ask the running host monitor to exit (it finishes the action in progress) and take
    /// over from it.
    #[arg(long)]
    pub replace: bool,
    /// Started by `rxl monitord` or `rxl create`: leave the caller's session.
    #[arg(long, hide = true)]
    pub detached: bool,
    /// What to do instead of running.
    #[command(subcommand)]
    pub command: Option<MonitordCommand>,
}

// `rxl monitord ...` (a plain comment: see `Command`)
#[derive(Debug, Subcommand)]
pub enum MonitordCommand {
    /// Tell whether a host monitor runs: its pid, its version, how many domains it
    /// watches. Exit 0 when one runs, 1 when none does.
    Status {
        /// Print JSON: {"running": bool, "pid", "version", "domains"}.
        #[arg(long)]
        json: bool,
    },
}

// The autostart directory.
#[derive(Debug, Args)]
pub struct AutostartDirArgs {
    /// The directory of guest configs (default: rxl.conf's autostart_dir, /etc/xen/auto).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

// `rxl autostart stop`.
#[derive(Debug, Args)]
pub struct AutostartStopArgs {
    /// Seconds to wait for the guests to shut down before destroying them.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Every domain but Domain-0, not only those autostart started.
    #[arg(long)]
    pub all: bool,
}

/// `rxl kernel-cache ...`
#[derive(Debug, Subcommand)]
pub enum KernelCacheCommand {
    /// List the entries, least recently used first: hash of the compressed kernel, size,
    /// last use.
    List {
        /// Print JSON: {"dir": ..., "max_bytes": ..., "entries": [{"hash", "size", "last_use"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry.
    Clear,
}

// `rxl block-attach`.
#[derive(Debug, Args)]
pub struct BlockAttachArgs {
    /// Print JSON: the device attached.
    #[arg(long)]
    pub json: bool,
    /// The domain (name or id).
    pub domain: String,
    /// The disk, as an item of a config file's `disk = [..]`; several words are joined
    /// with ','. A relative image path is taken from the current directory.
    #[arg(value_name = "DISKSPEC", required = true)]
    pub spec: Vec<String>,
}

// `rxl network-attach`.
#[derive(Debug, Args)]
pub struct NetworkAttachArgs {
    /// Print JSON: the device attached.
    #[arg(long)]
    pub json: bool,
    /// The domain (name or id).
    pub domain: String,
    /// The interface, as an item of a config file's `vif = [..]`; several words are
    /// joined with ','. What it does not say comes from xl.conf's vif.default.* (else
    /// bridge xenbr0, script vif-bridge), the MAC is random and the devid the next free.
    #[arg(value_name = "VIFSPEC")]
    pub spec: Vec<String>,
}

// `rxl block-detach`.
#[derive(Debug, Args)]
pub struct BlockDetachArgs {
    /// Remove the disk at once, without waiting for the guest to let it go (as xl -f).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Print JSON: the device detached.
    #[arg(long)]
    pub json: bool,
    /// The domain (name or id).
    pub domain: String,
    /// The disk: its vdev (xvdb) or its devid number (51728).
    pub vdev: String,
}

// `rxl network-detach`.
#[derive(Debug, Args)]
pub struct NetworkDetachArgs {
    /// Print JSON: the device detached.
    #[arg(long)]
    pub json: bool,
    /// The domain (name or id).
    pub domain: String,
    /// The interface: its devid (0, 1, ...) or its MAC address.
    #[arg(value_name = "DEVID|MAC")]
    pub device: String,
}

// `rxl block-list` / `rxl network-list`.
#[derive(Debug, Args)]
pub struct DeviceListArgs {
    /// Print JSON: an array of devices.
    #[arg(long)]
    pub json: bool,
    /// The domains (names or ids).
    #[arg(value_name = "DOMAIN", required = true)]
    pub domains: Vec<String>,
}

// `rxl create`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rxl create guest.cfg                 create and start; prints the domain id
  rxl create -n guest.cfg --json       dry run: the resolved domain and boot plan
  rxl create -p guest.cfg vcpus=4      create paused, with a setting overridden")]
pub struct CreateArgs {
    /// Leave the domain paused after creating it.
    #[arg(short = 'p', long)]
    pub paused: bool,
    /// Attach to the console once the domain is created.
    #[arg(short = 'c', long)]
    pub console: bool,
    /// Dry run: resolve the config and plan the boot image, touch nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Monitor the domain in this process (do not return until the domain is gone); the
    /// host monitor leaves it alone.
    #[arg(short = 'F', long)]
    pub foreground: bool,
    /// No monitor: nothing applies on_poweroff/on_reboot/on_crash (the host monitor leaves
    /// the domain alone).
    #[arg(short = 'e', long = "no-monitor")]
    pub no_monitor: bool,
    /// Quiet: no warnings, only errors and the result.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print JSON: the dry run's domain and layout, or {"domid": N, "name": "..."}.
    #[arg(long)]
    pub json: bool,
    /// Report where the time went: the boot plan (image, decompression, bootloader) and
    /// each create step's wall time, hypercalls, time inside them and xenstore requests
    /// (a table on stderr; with --json, a "profile" object in the output).
    #[arg(long)]
    pub times: bool,
    /// The config file (`-` for stdin).
    pub file: PathBuf,
    /// Settings applied after the file, as `xl create FILE key=value` does.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// A trigger by xl's name.
fn parse_trigger(s: &str) -> Result<xen_host::Trigger, String> {
    xen_host::Trigger::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = xen_host::Trigger::ALL.iter().map(|t| t.name()).collect();
        format!("invalid trigger \"{s}\" (one of: {})", names.join(", "))
    })
}

// `rxl shutdown` and `rxl reboot`.
#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// Wait until each domain has shut down and is gone (or is kept by its on_* action).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Every domain except Domain-0.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// If the guest does not react to the request within a few seconds, shut it down from
    /// the hypervisor instead (SCHEDOP_remote_shutdown). An HVM guest without PV drivers
    /// (no PV control) gets the ACPI power button (shutdown) or reset (reboot) event
    /// instead, as with xl -F; without -F such a guest is refused.
    #[arg(short = 'F', long)]
    pub force: bool,
    /// With -w: give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// The domains (names or ids).
    #[arg(value_name = "DOMAIN", required_unless_present = "all")]
    pub domains: Vec<String>,
}

// `rxl list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON with each domain's stored config.
    #[arg(short, long)]
    pub long: bool,
    /// Print JSON: an array of {domid, name, uuid, memory_mib, vcpus, state, cpu_time_s, ...}.
    #[arg(long)]
    pub json: bool,
    /// Add the UUID, shutdown reason code and security label columns.
    #[arg(short = 'v', long = "verbose-columns")]
    pub verbose: bool,
    /// Only these domains (names or ids).
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
}

/// `rxl config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the raw settings of a config file (after `+=` and last-wins).
    Parse {
        /// The config file (`-` for stdin).
        file: PathBuf,
        /// Print JSON: {"file": ..., "settings": {...}} or {"file": ..., "errors": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file fully. Exit 0 when valid (warnings allowed), 1 when not.
    Check(ConfigFileArgs),
}

// A config file and `key=value` overrides.
#[derive(Debug, Args)]
pub struct ConfigFileArgs {
    /// The config file (`-` for stdin).
    pub file: PathBuf,
    /// Settings applied after the file, as `xl create FILE key=value` does.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

// `rxl bootloader`: pygrub's options.
#[derive(Debug, Args)]
pub struct BootloaderArgs {
    /// Boot this kernel (a path inside the guest) instead of a configuration file's entry.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<String>,
    /// With --kernel: the ramdisk (a path inside the guest).
    #[arg(long, value_name = "PATH")]
    pub ramdisk: Option<String>,
    /// With --kernel the whole command line; else appended to the entry's.
    #[arg(long, value_name = "CMDLINE", allow_hyphen_values = true)]
    pub args: Option<String>,
    /// The entry to boot: an index, else a title.
    #[arg(long, value_name = "ENTRY")]
    pub entry: Option<String>,
    /// The uid to become before reading the disk (default: the user nobody).
    #[arg(long, value_name = "UID")]
    pub runas: Option<u32>,
    /// Print nothing but errors (rxl's bootloader has no menu: the default entry boots).
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the boot menu instead of booting: NUL-terminated items `default N` and
    /// `title T` per entry, then an empty item (no kernel or ramdisk file is made).
    #[arg(short = 'l', long)]
    pub list_entries: bool,
    /// Where to write the chosen items.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// The output format: only simple0.
    #[arg(long, value_name = "FORMAT", default_value = "simple0")]
    pub output_format: String,
    /// The existing directory where the kernel and ramdisk files are created.
    #[arg(long, value_name = "DIR")]
    pub output_directory: PathBuf,
    /// The guest's disk (an image file or a block device).
    pub disk: PathBuf,
}

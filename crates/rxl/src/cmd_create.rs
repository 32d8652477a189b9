//! `rxl create` (and its dry run), and the foreground monitor of `create -F`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use pvh::FirmwareSearch;
use serde_json::json;
use toolstack::create::CreateOptions;
use toolstack::events::Event;
use toolstack::monitor::MonitoredBy;
use toolstack::LaunchError;
use xen_host::DomId;
use xlcfg::model::{Action, Boot, DomainConfig};
use xlcfg::Diagnostic;

use crate::backend::Backend;
use crate::cli::CreateArgs;
use crate::load;
use crate::report::{json_text, out, print_diagnostics, print_json, try_out, Reported};

/// `rxl create`.
pub fn run(sim: Option<&Path>, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let host_conf = crate::backend::read_host_conf(sim, args.quiet)?;
    let loaded = load::load(&args.file, &args.overrides, args.quiet, &host_conf.xl.vif)?;
    let cfg = loaded.config;
    // A disk image that is not there is refused here, at its place in the config, before
    // anything is built (its hotplug script would find out only once the domain exists).
    // The dry run says so as a warning (its images may not be made yet).
    let mut missing = xlcfg::model::check_disk_files(&cfg.disks);
    if args.dry_run {
        for d in &mut missing {
            d.severity = xlcfg::settings::Severity::Warning;
        }
        if !args.quiet {
            print_diagnostics(&missing);
        }
    } else if !missing.is_empty() {
        print_diagnostics(&missing);
        return Err(Reported.into());
    }
    let mut search = FirmwareSearch::from_env();
    // A dry run (often run as non-root, where the cache cannot be) uses it without a warning.
    search.kernel_cache = crate::backend::kernel_cache(sim, &host_conf, args.quiet || args.dry_run);
    let mut boot = crate::backend::bootloader_options(sim, &host_conf)?;
    // -c on a terminal: the guest's boot menu is shown and an entry may be picked.
    if args.console && !args.dry_run && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        boot.menu = Some(crate::console::menu_prompt(cfg.name.clone()));
    }
    if args.dry_run {
        return dry_run(&cfg, &search, &boot, args);
    }
    if !args.quiet {
        warn_unsupported_actions(&cfg);
    }
    // A bootloader runs here, before anything is built: when it fails there is nothing to
    // undo. Its time is part of the plan's.
    let before_plan = crate::startup::since_main();
    let planning = std::time::Instant::now();
    let plan = plan(&cfg, &search, &boot)?;
    let plan_time = planning.elapsed();
    let opening = std::time::Instant::now();
    let host = Backend::open(sim)?;
    let opts = create_options(
        &host,
        args.paused,
        host.device_options_for(&host_conf),
        boot,
    );
    let open_time = opening.elapsed();
    // The monitor step runs before the domain does: it makes sure the host monitor runs
    // (if none can be started, the create fails and leaves nothing), or, for -F (this
    // process monitors the domain afterwards) and -e (nobody does), records that the host
    // monitor is to leave the domain alone.
    let by = if args.foreground {
        Some(MonitoredBy::Foreground)
    } else if args.no_monitor {
        Some(MonitoredBy::Nobody)
    } else {
        None
    };
    let state = toolstack::state::StateDir::new(host.state_dir());
    let mut start = |dom: DomId| match by {
        None => crate::cmd_monitord::ensure(sim, &host),
        Some(by) => toolstack::monitor::set_monitored_by(&state, dom, by)
            .map_err(|e| std::io::Error::other(e.to_string())),
    };
    let created = toolstack::create::create_monitored(
        host.hv(),
        host.xs(),
        &cfg,
        &plan,
        &opts,
        Some(&mut start),
    )
    .with_context(|| format!("cannot create {}", cfg.name))?;
    let after_steps = std::time::Instant::now();
    let dom = created.domid;
    toolstack::events::emit(&host.state_dir(), dom, &cfg.name, Event::created(&cfg));
    let phases = Phases {
        start_to_main: crate::startup::start_to_main(),
        before_plan,
        plan: plan_time,
        open: open_time,
        after_steps: after_steps.elapsed(),
        main: crate::startup::since_main(),
    };
    // The domain exists now and has its monitor: a closed stdout is not a reason to stop
    // here.
    if args.times && !args.json {
        eprint!("{}", profile_table(&phases, &created));
    }
    let _ = if args.json {
        let mut v = json!({"domid": dom.0, "name": cfg.name});
        if args.times {
            let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            v["profile"] = json!({
                "start_to_main_us": phases.start_to_main.map(us),
                "before_plan_us": us(phases.before_plan),
                "plan_us": us(phases.plan),
                "open_us": us(phases.open),
                "after_steps_us": us(phases.after_steps),
                "main_us": us(phases.main),
                "hypercalls": created.hypercalls,
                "steps": created.steps,
            });
        }
        try_out(format_args!("{}", json_text(&v)))
    } else {
        try_out(format_args!("{dom}\n"))
    };
    if args.foreground {
        return monitor(&host, dom);
    }
    if args.console {
        let kind = if cfg.domain_type == xlcfg::model::DomainType::Hvm {
            crate::console::ConsoleKind::Serial
        } else {
            crate::console::ConsoleKind::Pv
        };
        return crate::console::attach(&host, dom, kind, 0);
    }
    Ok(ExitCode::SUCCESS)
}

/// A create's time outside its steps (`create --times`).
struct Phases {
    /// From the process's start to `main` (exec, loader, runtime), when `/proc` tells.
    start_to_main: Option<std::time::Duration>,
    /// From `main` to the plan: arguments, host files, the config and its checks.
    before_plan: std::time::Duration,
    /// The boot plan (image probing, decompression or the kernel cache, a bootloader).
    plan: std::time::Duration,
    /// Opening the host: xenstore, the hypercall interface, the device options.
    open: std::time::Duration,
    /// After the steps: the lifecycle event.
    after_steps: std::time::Duration,
    /// Everything from `main` to the report.
    main: std::time::Duration,
}

/// `create --times`: the time before the steps, one line per step, the time after them,
/// then the totals (the steps' sums, and the wall time since `main`).
fn profile_table(p: &Phases, created: &toolstack::create::Created) -> String {
    use std::fmt::Write as _;
    let ms = |us: u64| us as f64 / 1000.0;
    let dms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let mut t = format!(
        "{:<26} {:>9} {:>10} {:>12} {:>11}\n",
        "step", "ms", "hypercalls", "in Xen (ms)", "xs requests"
    );
    if let Some(d) = p.start_to_main {
        let _ = writeln!(t, "{:<26} {:>9.2}", "(process start to main)", dms(d));
    }
    let _ = writeln!(
        t,
        "{:<26} {:>9.2}",
        "(config and host files)",
        dms(p.before_plan)
    );
    let _ = writeln!(t, "{:<26} {:>9.2}", "(boot plan)", dms(p.plan));
    let _ = writeln!(t, "{:<26} {:>9.2}", "(open host)", dms(p.open));
    let (mut us, mut calls, mut xen, mut reqs) = (0, 0, 0, 0);
    for s in &created.steps {
        let _ = writeln!(
            t,
            "{:<26} {:>9.2} {:>10} {:>12.2} {:>11}",
            s.step.name(),
            ms(s.us),
            s.hypercalls,
            ms(s.hypercall_us),
            s.xs_requests
        );
        us += s.us;
        calls += s.hypercalls;
        xen += s.hypercall_us;
        reqs += s.xs_requests;
    }
    let _ = writeln!(t, "{:<26} {:>9.2}", "(after the steps)", dms(p.after_steps));
    let _ = writeln!(t, "{:<26} {:>9.2}", "(since main)", dms(p.main));
    let _ = writeln!(
        t,
        "{:<26} {:>9.2} {:>10} {:>12.2} {:>11}",
        "total (steps + plan)",
        ms(us) + dms(p.plan),
        calls,
        ms(xen),
        reqs
    );
    t
}

/// The options a create (or a restart by the monitor) uses on `host`, its devices set up
/// with `devices` ([`Backend::device_options`]), its bootloader run with `bootloader`
/// ([`crate::backend::bootloader_options`]).
pub fn create_options(
    host: &Backend,
    paused: bool,
    devices: toolstack::devices::DeviceOptions,
    bootloader: toolstack::bootloader::BootloaderOptions,
) -> CreateOptions {
    CreateOptions {
        paused,
        state_dir: host.state_dir(),
        backend_domid: DomId::DOM0,
        devices,
        bootloader,
    }
}

fn warn_unsupported_actions(cfg: &DomainConfig) {
    for (key, action) in [
        ("on_poweroff", cfg.on_poweroff),
        ("on_reboot", cfg.on_reboot),
        ("on_watchdog", cfg.on_watchdog),
        ("on_crash", cfg.on_crash),
    ] {
        match action {
            Action::CoredumpDestroy | Action::CoredumpRestart => eprintln!(
                "rxl: warning: {key} = \"{action}\": rxl writes no core dumps; it will {} \
                 without one",
                if action == Action::CoredumpDestroy {
                    "destroy"
                } else {
                    "restart"
                }
            ),
            Action::SoftReset => eprintln!(
                "rxl: warning: {key} = \"soft-reset\": rxl restarts the guest afresh instead"
            ),
            _ => {}
        }
    }
}

/// Where the boot image of `cfg` is named in its config file, for diagnostics, and what
/// it is called.
fn image_span(cfg: &DomainConfig) -> (Option<xlcfg::Span>, &'static str) {
    match &cfg.boot {
        Boot::Kernel { kernel, .. } => (kernel.span.clone(), "the kernel"),
        Boot::Firmware { firmware, .. } => (firmware.span.clone(), "the firmware"),
        Boot::Bootloader { path, .. } => (path.span.clone(), "the bootloader"),
    }
}

/// Plan the boot; errors point at the config line of the input that failed.
fn plan(
    cfg: &DomainConfig,
    search: &FirmwareSearch,
    boot: &toolstack::bootloader::BootloaderOptions,
) -> anyhow::Result<toolstack::GuestPlan> {
    toolstack::plan_for(cfg, search, boot).map_err(|e| report_launch_error(cfg, &e))
}

/// A planning error as a diagnostic at the config line it is about: the module's entry for
/// a module (by the index the error carries), the kernel/firmware line otherwise.
fn report_launch_error(cfg: &DomainConfig, e: &LaunchError) -> anyhow::Error {
    let (image, image_name) = image_span(cfg);
    let (span, message) = match e {
        LaunchError::Module { index, source } => (
            cfg.boot
                .modules()
                .get(*index)
                .and_then(|m| m.path.span.clone()),
            format!("cannot load module {index}: {source}"),
        ),
        LaunchError::Image(source) => (image, format!("cannot load {image_name}: {source}")),
        LaunchError::Boot(_) => (image, format!("cannot boot this guest: {e}")),
        LaunchError::Bootloader(_) => (image, format!("cannot boot this guest: {e}")),
        LaunchError::Plan(_) => (image, format!("cannot lay out the guest's memory: {e}")),
        LaunchError::PvPlan(_) => (image, format!("cannot boot this guest as PV: {e}")),
        LaunchError::Create(_) => (image, format!("cannot create the guest: {e}")),
    };
    match span {
        Some(span) => {
            print_diagnostics([&Diagnostic::error(span, message)]);
            Reported.into()
        }
        None => anyhow::anyhow!("{message}"),
    }
}

/// The dry run. A guest with a bootloader has it run (with the same bounds as a create):
/// the layout needs its kernel. Nothing else is made on the host.
fn dry_run(
    cfg: &DomainConfig,
    search: &FirmwareSearch,
    boot: &toolstack::bootloader::BootloaderOptions,
    args: &CreateArgs,
) -> anyhow::Result<ExitCode> {
    let plan = plan(cfg, search, boot)?;
    let devices = planned_devices(cfg);
    if args.json {
        let mut v = cfg.to_json();
        v["layout"] = plan.layout_json();
        v["devices"] = match &devices {
            Ok(list) => json!({ "planned": list.iter().map(device_json).collect::<Vec<_>>() }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        print_json(&v);
    } else {
        let mut text = summary(cfg);
        match &devices {
            Ok(list) => {
                for d in list {
                    text.push_str(&format!("device    {d}\n"));
                }
            }
            Err(e) => text.push_str(&format!("devices   cannot be planned: {e}\n")),
        }
        out(format_args!("{text}\n{}", plan.layout_table()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The devices a create would set up for `cfg` (rxl does not attach them yet: the create
/// warns and leaves them out). A dry run has no host to ask, so a backend domain can be
/// named only as `0`, `Domain-0` or a domain id; a vif without a mac gets a random one, as
/// at create.
fn planned_devices(
    cfg: &DomainConfig,
) -> Result<Vec<devices::PlannedDevice>, devices::DeviceError> {
    let guest = devices::Guest {
        domid: DomId(1),
        domain_type: cfg.domain_type,
    };
    let mut backend = |name: &str| match name {
        "Domain-0" => Some(DomId::DOM0),
        id => id.parse::<u16>().ok().map(DomId),
    };
    devices::plan(
        &guest,
        cfg,
        Path::new(devices::XEN_SCRIPT_DIR),
        &mut backend,
    )
}

/// One planned device in `create -n --json`: what it is and what serves it, without the
/// xenstore paths (they depend on the domain id the create will get).
fn device_json(d: &devices::PlannedDevice) -> serde_json::Value {
    json!({
        "kind": d.kind.as_str(),
        "devid": d.devid,
        "label": d.label,
        "backend_kind": d.backend_kind,
        "backend_domid": d.backend.0,
        "target": d.target,
        "mode": d.mode,
        "mac": d.mac,
        "script": d.hotplug_add.as_ref().map(|h| h.script.display().to_string()),
    })
}

/// The readable form of a resolved domain.
fn summary(cfg: &DomainConfig) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "name      {}", cfg.name);
    let _ = writeln!(out, "type      {}", cfg.domain_type.as_str());
    let _ = writeln!(out, "uuid      {}", cfg.uuid.hyphenated());
    let _ = writeln!(
        out,
        "memory    {} MiB (maxmem {} MiB)",
        cfg.memory_mib, cfg.maxmem_mib
    );
    let _ = writeln!(out, "vcpus     {} (maxvcpus {})", cfg.vcpus, cfg.maxvcpus);
    match &cfg.boot {
        Boot::Kernel { kernel, .. } => {
            let _ = writeln!(out, "kernel    {}", kernel.value.display());
        }
        Boot::Firmware { firmware, .. } => {
            let _ = writeln!(out, "firmware  {}", firmware.value);
        }
        Boot::Bootloader { path, args, .. } => {
            let _ = writeln!(out, "bootldr   {} {}", path.value.display(), args.join(" "));
        }
    }
    if let Some(c) = cfg.boot.cmdline() {
        let _ = writeln!(out, "cmdline   {c}");
    }
    for (i, m) in cfg.boot.modules().iter().enumerate() {
        let _ = writeln!(
            out,
            "module {i}  {}{}",
            m.path.value.display(),
            m.cmdline
                .as_deref()
                .map(|c| format!("  [{c}]"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "actions   poweroff={} reboot={} crash={} watchdog={} soft_reset={}",
        cfg.on_poweroff, cfg.on_reboot, cfg.on_crash, cfg.on_watchdog, cfg.on_soft_reset
    );
    let _ = writeln!(out, "disks     {}", cfg.disks.len());
    let _ = writeln!(out, "vifs      {}", cfg.vifs.len());
    out
}

/// The options and kernel search a monitor rebuilds guests with on `host` (its host
/// files read once, when the monitor starts).
pub fn restart_options(host: &Backend) -> anyhow::Result<(CreateOptions, FirmwareSearch)> {
    let conf = crate::backend::read_host_conf(host.sim_dir(), false)?;
    let boot = crate::backend::bootloader_options(host.sim_dir(), &conf)?;
    let opts = create_options(host, false, host.device_options_for(&conf), boot);
    let mut search = FirmwareSearch::from_env();
    search.kernel_cache = crate::backend::kernel_cache(host.sim_dir(), &conf, true);
    Ok((opts, search))
}

/// The foreground monitor of `create -F`: apply the domain's on_* actions until it is gone.
fn monitor(host: &Backend, dom: DomId) -> anyhow::Result<ExitCode> {
    let (opts, search) = restart_options(host)?;
    tracing::info!("monitoring domain {dom}");
    // Its device model (the one of each restarted domain too) dying while the domain runs
    // is a crash (toolstack::dm_watch).
    let current = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(dom.0));
    let watched = std::sync::Arc::clone(&current);
    let dm_watcher = toolstack::dm_watch::DmWatcher::spawn(
        opts.devices.dm.record_dir.clone(),
        toolstack::dm_watch::crash_on_exit(
            Backend::open(host.sim_dir())?,
            Backend::hv,
            host.state_dir(),
            opts.devices.dm.record_dir.clone(),
            std::sync::Arc::new(std::sync::Mutex::new(())),
            Box::new(move |d, r| {
                d.0 == watched.load(std::sync::atomic::Ordering::SeqCst)
                    && r.monitored_by == toolstack::monitor::MonitoredBy::Foreground
            }),
        ),
    )
    .map_err(|e| tracing::error!("cannot watch the device model: {e}"))
    .ok();
    let mut rebuild = |cfg: &DomainConfig| -> Result<DomId, LaunchError> {
        let new = toolstack::launch(host.hv(), host.xs(), cfg, &opts, &search)?.domid;
        current.store(new.0, std::sync::atomic::Ordering::SeqCst);
        if let Some(w) = &dm_watcher {
            w.refresh();
        }
        Ok(new)
    };
    let outcome = toolstack::monitor::run(host.hv(), host.xs(), &opts, dom, &mut rebuild)?;
    tracing::info!("monitor done: {outcome:?}");
    Ok(ExitCode::SUCCESS)
}

//! `rxl`: a Xen toolstack for PVH guests.
//!
//! The library half holds the command line (so `cargo xtask man` can render it) and the
//! commands; it is argument parsing and rendering only: the domain logic lives in the
//! `toolstack` crate, the config in `xlcfg`, the boot image in `pvh`.

#![forbid(unsafe_code)]

mod backend;
pub mod cli;
mod cmd_autostart;
mod cmd_bootloader;
mod cmd_config;
mod cmd_create;
mod cmd_device;
mod cmd_domain;
mod cmd_events;
mod cmd_host;
mod cmd_kcache;
mod cmd_monitord;
mod console;
mod load;
mod report;
mod startup;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::report::Reported;

/// Run rxl with the process's arguments.
pub fn main() -> ExitCode {
    startup::mark_main();
    let cli = Cli::parse();
    // The host monitor logs what it does (to its log file) by default.
    let floor = if matches!(cli.command, Command::Monitord(_)) {
        1
    } else {
        0
    };
    init_logging(cli.verbose.max(floor));
    let result = run(cli);
    // A kernel cache entry a create's miss is still writing is finished before the exit.
    pvh::cache::wait_for_stores();
    match result {
        Ok(code) => code,
        Err(err) => {
            if err.downcast_ref::<Reported>().is_none() {
                eprintln!("rxl: error: {err:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let sim = cli.sim.as_deref();
    let host = || backend::Backend::open(sim);
    match cli.command {
        Command::SimDeviceModel { args } => {
            let Some(dir) = sim else {
                anyhow::bail!(
                    "sim-device-model stands in for QEMU on the simulated host only (--sim DIR)"
                );
            };
            sim::dm::run(dir, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(cmd) => cmd_config::run(cmd),
        Command::Create(args) => cmd_create::run(sim, &args),
        Command::Bootloader(args) => cmd_bootloader::run(&args),
        Command::Destroy { domain } => cmd_domain::destroy(&host()?, &domain),
        Command::Shutdown(args) => {
            cmd_domain::shutdown(&host()?, &args, toolstack::lifecycle::Request::Poweroff)
        }
        Command::Reboot(args) => {
            cmd_domain::shutdown(&host()?, &args, toolstack::lifecycle::Request::Reboot)
        }
        Command::Trigger {
            domain,
            trigger,
            vcpu,
        } => cmd_domain::trigger(&host()?, &domain, trigger, vcpu),
        Command::Pause { domain } => cmd_domain::pause(&host()?, &domain, true),
        Command::Unpause { domain } => cmd_domain::pause(&host()?, &domain, false),
        Command::Console { kind, num, domain } => {
            let host = host()?;
            let dom = cmd_domain::resolve(&host, &domain)?;
            let kind = match kind {
                Some(k) => k,
                None if host.hv().domain_info(dom)?.is_some_and(|i| i.hvm)
                    && xen_host::read_string(
                        host.xs(),
                        xen_host::TxId::NONE,
                        &format!("/libxl/{dom}/type"),
                    )?
                    .as_deref()
                        == Some("hvm") =>
                {
                    console::ConsoleKind::Serial
                }
                None => console::ConsoleKind::Pv,
            };
            console::attach(&host, dom, kind, num)
        }
        Command::Monitord(args) => cmd_monitord::run(sim, &args),
        Command::Info { json } => cmd_host::info(&host()?, json),
        Command::List(args) => cmd_host::list(&host()?, &args),
        Command::Domid { name, json } => cmd_host::domid(&host()?, &name, json),
        Command::Domname { id, json } => cmd_host::domname(&host()?, id, json),
        Command::BlockAttach(args) => cmd_device::block_attach(sim, &args),
        Command::BlockDetach(args) => cmd_device::block_detach(sim, &args),
        Command::BlockList(args) => cmd_device::list(&host()?, &args, devices::DeviceKind::Vbd),
        Command::NetworkAttach(args) => cmd_device::network_attach(sim, &args),
        Command::NetworkDetach(args) => cmd_device::network_detach(sim, &args),
        Command::NetworkList(args) => cmd_device::list(&host()?, &args, devices::DeviceKind::Vif),
        Command::KernelCache(cmd) => cmd_kcache::run(sim, &cmd),
        Command::Events(args) => cmd_events::run(sim, &args),
        Command::Autostart(cmd) => cmd_autostart::run(sim, &cmd),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

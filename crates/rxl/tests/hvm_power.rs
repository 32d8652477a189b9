//! Shutdown, reboot and triggers of HVM guests on the simulated host: `rxl trigger`, and
//! `rxl shutdown` / `rxl reboot` of an HVM guest whose PV control is unavailable (no PV
//! drivers: `HVM_PARAM_CALLBACK_IRQ` is 0), refused without -F and answered with the
//! ACPI event with -F, as xl does; guests with PV control keep the xenstore request.

mod common;

use common::{ok, stderr, Sim};
use xen_host::{hvm_param, CreateDomain, DomId, Hypervisor, ShutdownReason, Store, Trigger, TxId};

/// A running domain made on the host behind rxl's back (`kind` = the `/libxl/D/type`
/// rxl writes, none when `None`), with 2 vCPUs.
fn running(sim: &Sim, cfg: CreateDomain, kind: Option<&str>) -> DomId {
    let host = sim.host();
    let dom = host.create_domain(&cfg).expect("create");
    host.max_vcpus(dom, 2).expect("vcpus");
    if let Some(kind) = kind {
        host.write(TxId::NONE, &format!("/libxl/{dom}/type"), kind.as_bytes())
            .expect("type");
    }
    host.unpause(dom).expect("unpause");
    dom
}

fn hvm(sim: &Sim) -> DomId {
    running(sim, CreateDomain::hvm([7; 16], 2), Some("hvm"))
}

fn info(sim: &Sim, dom: DomId) -> xen_host::DomainInfo {
    sim.host()
        .domain_info(dom)
        .expect("info")
        .expect("the domain exists")
}

fn control_shutdown(sim: &Sim, dom: DomId) -> Option<Vec<u8>> {
    sim.host()
        .read(TxId::NONE, &format!("/local/domain/{dom}/control/shutdown"))
        .expect("read")
}

fn fails(o: std::process::Output) -> String {
    assert!(!o.status.success(), "{o:?}");
    stderr(&o)
}

#[test]
fn trigger_power_presses_the_acpi_power_button_and_the_guest_powers_off() {
    let sim = Sim::new();
    let dom = hvm(&sim);
    let id = dom.0.to_string();
    ok(sim.run(&["trigger", &id, "nmi", "1"]));
    assert!(!info(&sim, dom).shutdown);
    ok(sim.run(&["trigger", &id, "power"]));
    let i = info(&sim, dom);
    assert_eq!(i.shutdown_reason(), Some(ShutdownReason::Poweroff));
    assert_eq!(
        sim.host().triggers(dom).expect("triggers"),
        vec![(Trigger::Nmi, 1), (Trigger::Power, 0)]
    );
}

#[test]
fn triggers_xen_refuses_are_reported_and_bad_names_are_refused() {
    let sim = Sim::new();
    let dom = hvm(&sim);
    let id = dom.0.to_string();
    let e = fails(sim.run(&["trigger", &id, "reset"]));
    assert!(e.contains("cannot send the reset trigger to domain"), "{e}");
    assert!(e.contains("ENOSYS"), "{e}");
    let e = fails(sim.run(&["trigger", &id, "nmi", "2"]));
    assert!(e.contains("ESRCH"), "{e}");
    let e = fails(sim.run(&["trigger", &id, "s3resume"]));
    assert!(
        e.contains("invalid trigger \"s3resume\" (one of: nmi, reset, init, power, sleep)"),
        "{e}"
    );
    let pv = running(&sim, CreateDomain::pv([8; 16], 2), Some("pv"));
    let e = fails(sim.run(&["trigger", &pv.0.to_string(), "power"]));
    assert!(e.contains("EINVAL"), "{e}");
    let e = fails(sim.run(&["trigger", "0", "power"]));
    assert!(e.contains("Domain-0"), "{e}");
    assert!(!info(&sim, dom).shutdown);
}

#[test]
fn shutdown_of_an_hvm_guest_without_pv_drivers_needs_f_and_then_sends_the_power_button() {
    let sim = Sim::new();
    let dom = hvm(&sim);
    let id = dom.0.to_string();
    let e = fails(sim.run(&["shutdown", &id]));
    assert!(
        e.contains(&format!(
            "domain {dom} has no PV control interface (an HVM guest without PV drivers): a \
             graceful poweroff is not possible; use -F to send the ACPI power button event \
             instead"
        )),
        "{e}"
    );
    assert!(!info(&sim, dom).shutdown, "still runs");
    assert_eq!(control_shutdown(&sim, dom), None, "nothing written");
    assert_eq!(sim.host().triggers(dom).expect("triggers"), vec![]);

    let o = ok(sim.run(&["shutdown", "-F", &id]));
    assert!(
        stderr(&o)
            .contains("PV control interface not available: sending the ACPI power button event"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        info(&sim, dom).shutdown_reason(),
        Some(ShutdownReason::Poweroff)
    );
    // The button, not control/shutdown nor a remote shutdown.
    assert_eq!(
        sim.host().triggers(dom).expect("triggers"),
        vec![(Trigger::Power, 0)]
    );
    assert_eq!(control_shutdown(&sim, dom), None);
}

#[test]
fn reboot_of_an_hvm_guest_without_pv_drivers_needs_f_and_then_sends_the_reset() {
    let sim = Sim::new();
    let dom = hvm(&sim);
    let id = dom.0.to_string();
    let e = fails(sim.run(&["reboot", &id]));
    assert!(
        e.contains("a graceful reboot is not possible; use -F to send the ACPI reset event"),
        "{e}"
    );
    // x86 Xen has no reset trigger: the error says so, and the guest runs on.
    let e = fails(sim.run(&["reboot", "-F", &id]));
    assert!(
        e.contains(&format!(
            "cannot send the ACPI reset event to domain {dom} (Xen has no reset trigger on \
             x86, as for xl reboot -F)"
        )),
        "{e}"
    );
    assert!(!info(&sim, dom).shutdown);
    assert_eq!(control_shutdown(&sim, dom), None);
}

#[test]
fn guests_with_pv_control_are_asked_through_xenstore_as_before() {
    let sim = Sim::new();
    // An HVM guest whose PV drivers set up their upcall.
    let dom = hvm(&sim);
    sim.host()
        .set_hvm_param(dom, hvm_param::CALLBACK_IRQ, 0x0200_0000_0000_0005)
        .expect("param");
    ok(sim.run(&["reboot", &dom.0.to_string()]));
    assert_eq!(
        info(&sim, dom).shutdown_reason(),
        Some(ShutdownReason::Reboot)
    );
    assert_eq!(sim.host().triggers(dom).expect("triggers"), vec![]);
    // A PVH guest (Xen's HVM flag, /libxl/D/type = pvh) has PV control. (A PV guest is
    // never asked about PV drivers: Xen does not flag it HVM.)
    let d = running(&sim, CreateDomain::pvh([9; 16], 2), Some("pvh"));
    assert_eq!(
        sim.host()
            .get_hvm_param(d, hvm_param::CALLBACK_IRQ)
            .expect("param"),
        0
    );
    ok(sim.run(&["shutdown", &d.0.to_string()]));
    assert_eq!(
        info(&sim, d).shutdown_reason(),
        Some(ShutdownReason::Poweroff)
    );
    assert_eq!(sim.host().triggers(d).expect("triggers"), vec![]);
}

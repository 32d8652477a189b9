//! Print what `XenHost` reads from the hypervisor: version, interfaces, physinfo and the
//! domain list. A quick check of the ABI on a real host: `xenprobe` in dom0, as root.

use xen_host::Hypervisor;

fn main() {
    let host = match xencall::XenHost::open() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("xenprobe: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = report(&host) {
        eprintln!("xenprobe: {e}");
        std::process::exit(1);
    }
}

fn report(host: &xencall::XenHost) -> xen_host::Result<()> {
    let v = host.version()?;
    println!(
        "xen {}.{}{} domctl {:#x} sysctl {:#x}",
        v.major, v.minor, v.extra, v.domctl_interface, v.sysctl_interface
    );
    println!("capabilities {}", v.capabilities);
    let p = host.physinfo()?;
    println!(
        "cpus {} khz {} total_pages {} free_pages {} caps {:?}",
        p.nr_cpus, p.cpu_khz, p.total_pages, p.free_pages, p.caps
    );
    for d in host.list_domains()? {
        println!(
            "dom {:5} {} pages {} vcpus {} cpu {:.1}s",
            d.domid,
            d.state_letters(),
            d.tot_pages,
            d.nr_online_vcpus,
            d.cpu_time_ns as f64 / 1e9
        );
    }
    let dom0 = host.domain_info(xen_host::DomId::DOM0)?;
    println!("dom0 present: {}", dom0.is_some());
    println!("hypercalls: {}", host.hypercall_count());
    Ok(())
}

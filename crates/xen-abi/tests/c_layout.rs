//! Compares every struct, field offset and constant of this crate with what gcc computes
//! from Xen 4.17's public headers in /usr/include/xen (Debian libxen-dev).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::process::Command;

use xen_abi::domctl::{self, *};
use xen_abi::hvm::{self, *};
use xen_abi::memory::{self, *};
use xen_abi::misc::{self, *};
use xen_abi::pv::{self, *};
use xen_abi::sysctl::{self, *};

/// One fact: a C expression and the value Rust has for it.
struct Fact {
    c: String,
    rust: u64,
}

#[derive(Default)]
struct Facts(Vec<Fact>);

impl Facts {
    fn add(&mut self, c: impl Into<String>, rust: u64) {
        self.0.push(Fact { c: c.into(), rust });
    }
}

macro_rules! layout {
    ($facts:expr, $cty:literal, $ty:ty, { $($field:ident $(=> $cfield:literal)?),* $(,)? }) => {{
        $facts.add(format!("sizeof({})", $cty), size_of::<$ty>() as u64);
        $(
            let cfield = layout!(@name $field $(, $cfield)?);
            $facts.add(format!("offsetof({}, {})", $cty, cfield), offset_of!($ty, $field) as u64);
        )*
    }};
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident, $cfield:literal) => { $cfield };
}

fn facts() -> Facts {
    let mut f = Facts::default();
    layout!(f, "struct xen_domctl", Domctl, {
        cmd, interface_version, domain, pad => "_pad", u
    });
    layout!(f, "struct xen_domctl_createdomain", CreateDomainV417, {
        ssidref, handle, flags, iommu_opts, max_vcpus, max_evtchn_port, max_grant_frames,
        max_maptrack_frames, grant_opts, vmtrace_size, cpupool_id,
        emulation_flags => "arch.emulation_flags", misc_flags => "arch.misc_flags",
    });
    layout!(f, "struct xen_domctl_getdomaininfo", GetDomainInfo, {
        domain, pad1, flags, tot_pages, max_pages, outstanding_pages, shr_pages, paged_pages,
        shared_info_frame, cpu_time, nr_online_vcpus, max_vcpu_id, ssidref, handle, cpupool,
        gpaddr_bits, pad2, emulation_flags => "arch_config.emulation_flags",
        misc_flags => "arch_config.misc_flags",
    });
    layout!(f, "struct xen_domctl_max_vcpus", MaxVcpus, { max });
    layout!(f, "struct xen_domctl_sendtrigger", SendTrigger, { trigger, vcpu });
    layout!(f, "struct xen_domctl_max_mem", MaxMem, { max_memkb });
    layout!(f, "struct xen_domctl_hvmcontext", HvmContext, { size, buffer });
    layout!(f, "struct xen_domctl_tsc_info", TscInfo, {
        tsc_mode, gtsc_khz, incarnation, pad, elapsed_nsec
    });
    layout!(f, "struct xen_domctl_paging_mempool", PagingMempool, {
        size
    });
    layout!(f, "struct xen_domctl_vcpucontext", VcpuContext, { vcpu, ctxt });
    layout!(f, "struct xen_domctl_hypercall_init", HypercallInit, {
        gmfn
    });
    layout!(f, "struct xen_domctl_address_size", AddressSize, { size });
    layout!(f, "struct cpu_user_regs", CpuUserRegsX86_64, {
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, error_code,
        entry_vector, rip, cs, pad0 => "_pad0", saved_upcall_mask, pad1 => "_pad1", rflags,
        rsp, ss, pad2 => "_pad2", es, pad3 => "_pad3", ds, pad4 => "_pad4", fs,
        pad5 => "_pad5", gs, pad6 => "_pad6",
    });
    layout!(f, "struct trap_info", TrapInfo, { vector, flags, cs, address });
    layout!(f, "struct vcpu_guest_context", VcpuGuestContextX86_64, {
        fpu_ctxt, flags, user_regs, trap_ctxt, ldt_base, ldt_ents, gdt_frames, gdt_ents,
        kernel_ss, kernel_sp, ctrlreg, debugreg, event_callback_eip, failsafe_callback_eip,
        syscall_callback_eip, vm_assist, fs_base, gs_base_kernel, gs_base_user,
    });
    layout!(f, "struct mmuext_op", MmuextOp, { cmd, arg1, arg2 });
    layout!(f, "struct xen_sysctl", Sysctl, { cmd, interface_version, u });
    layout!(f, "struct xen_sysctl_physinfo", PhysInfo, {
        threads_per_core, cores_per_socket, nr_cpus, max_cpu_id, nr_nodes, max_node_id,
        cpu_khz, capabilities, arch_capabilities, pad, total_pages, free_pages, scrub_pages,
        outstanding_pages, max_mfn, hw_cap,
    });
    layout!(f, "struct xen_sysctl_getdomaininfolist", GetDomainInfoList, {
        first_domain, max_domains, buffer, num_domains
    });
    layout!(f, "struct xen_memory_reservation", MemoryReservation, {
        extent_start, nr_extents, extent_order, mem_flags, domid
    });
    layout!(f, "struct xen_foreign_memory_map", ForeignMemoryMap, {
        domid, nr_entries => "map.nr_entries", buffer => "map.buffer"
    });
    layout!(f, "struct xen_add_to_physmap", AddToPhysmap, { domid, size, space, idx, gpfn });
    layout!(f, "struct xen_remove_from_physmap", RemoveFromPhysmap, { domid, gpfn });
    layout!(f, "struct xen_mem_acquire_resource", MemAcquireResource, {
        domid, kind => "type", id, nr_frames, pad, frame, frame_list
    });
    layout!(f, "struct xen_hvm_param", HvmParam, { domid, pad, index, value });
    layout!(f, "struct evtchn_alloc_unbound", EvtchnAllocUnbound, { dom, remote_dom, port });
    layout!(f, "struct sched_remote_shutdown", SchedRemoteShutdown, { domain_id, reason });
    layout!(f, "struct grant_entry_v1", GrantEntryV1, { flags, domid, frame });
    layout!(f, "struct hvm_save_descriptor", HvmSaveDescriptor, { typecode, instance, length });
    layout!(f, "struct hvm_save_header", HvmSaveHeader, {
        magic, version, changeset, cpuid, gtsc_khz
    });
    layout!(f, "struct hvm_hw_mtrr", HvmHwMtrr, {
        msr_pat_cr, msr_mtrr_var, msr_mtrr_fixed, msr_mtrr_cap, msr_mtrr_def_type
    });
    layout!(f, "struct hvm_hw_cpu", HvmHwCpu, {
        fpu_regs, rax, rbx, rcx, rdx, rbp, rsi, rdi, rsp, r8, r9, r10, r11, r12, r13, r14, r15,
        rip, rflags, cr0, cr2, cr3, cr4, dr0, dr1, dr2, dr3, dr6, dr7,
        cs_sel, ds_sel, es_sel, fs_sel, gs_sel, ss_sel, tr_sel, ldtr_sel,
        cs_limit, ds_limit, es_limit, fs_limit, gs_limit, ss_limit, tr_limit, ldtr_limit,
        idtr_limit, gdtr_limit,
        cs_base, ds_base, es_base, fs_base, gs_base, ss_base, tr_base, ldtr_base, idtr_base,
        gdtr_base,
        cs_arbytes, ds_arbytes, es_arbytes, fs_arbytes, gs_arbytes, ss_arbytes, tr_arbytes,
        ldtr_arbytes,
        sysenter_cs, sysenter_esp, sysenter_eip, shadow_gs, msr_flags, msr_lstar, msr_star,
        msr_cstar, msr_syscall_mask, msr_efer, msr_tsc_aux, tsc, pending_event, error_code,
        flags, pad0,
    });

    // Constants.
    let consts: &[(&str, u64)] = &[
        (
            "XEN_DOMCTL_INTERFACE_VERSION",
            xen_abi::version::KNOWN_RELEASES[0].domctl as u64,
        ),
        (
            "XEN_SYSCTL_INTERFACE_VERSION",
            xen_abi::version::KNOWN_RELEASES[0].sysctl as u64,
        ),
        ("XEN_DOMCTL_createdomain", domctl::cmd::CREATEDOMAIN as u64),
        (
            "XEN_DOMCTL_destroydomain",
            domctl::cmd::DESTROYDOMAIN as u64,
        ),
        ("XEN_DOMCTL_pausedomain", domctl::cmd::PAUSEDOMAIN as u64),
        (
            "XEN_DOMCTL_unpausedomain",
            domctl::cmd::UNPAUSEDOMAIN as u64,
        ),
        (
            "XEN_DOMCTL_getdomaininfo",
            domctl::cmd::GETDOMAININFO as u64,
        ),
        ("XEN_DOMCTL_max_mem", domctl::cmd::MAX_MEM as u64),
        ("XEN_DOMCTL_max_vcpus", domctl::cmd::MAX_VCPUS as u64),
        (
            "XEN_DOMCTL_gethvmcontext",
            domctl::cmd::GETHVMCONTEXT as u64,
        ),
        (
            "XEN_DOMCTL_sethvmcontext",
            domctl::cmd::SETHVMCONTEXT as u64,
        ),
        ("XEN_DOMCTL_settscinfo", domctl::cmd::SETTSCINFO as u64),
        ("XEN_DOMCTL_sendtrigger", domctl::cmd::SENDTRIGGER as u64),
        ("XEN_DOMCTL_SENDTRIGGER_NMI", domctl::trigger::NMI as u64),
        (
            "XEN_DOMCTL_SENDTRIGGER_RESET",
            domctl::trigger::RESET as u64,
        ),
        ("XEN_DOMCTL_SENDTRIGGER_INIT", domctl::trigger::INIT as u64),
        (
            "XEN_DOMCTL_SENDTRIGGER_POWER",
            domctl::trigger::POWER as u64,
        ),
        (
            "XEN_DOMCTL_SENDTRIGGER_SLEEP",
            domctl::trigger::SLEEP as u64,
        ),
        (
            "XEN_DOMCTL_setvcpucontext",
            domctl::cmd::SETVCPUCONTEXT as u64,
        ),
        (
            "XEN_DOMCTL_hypercall_init",
            domctl::cmd::HYPERCALL_INIT as u64,
        ),
        (
            "XEN_DOMCTL_set_address_size",
            domctl::cmd::SET_ADDRESS_SIZE as u64,
        ),
        ("__HYPERVISOR_mmuext_op", pv::HYPERCALL_MMUEXT_OP),
        ("MMUEXT_PIN_L1_TABLE", pv::mmuext::PIN_L1_TABLE as u64),
        ("MMUEXT_PIN_L2_TABLE", pv::mmuext::PIN_L2_TABLE as u64),
        ("MMUEXT_PIN_L3_TABLE", pv::mmuext::PIN_L3_TABLE as u64),
        ("MMUEXT_PIN_L4_TABLE", pv::mmuext::PIN_L4_TABLE as u64),
        ("MMUEXT_UNPIN_TABLE", pv::mmuext::UNPIN_TABLE as u64),
        ("VGCF_i387_valid", pv::vgcf::I387_VALID),
        ("VGCF_in_kernel", pv::vgcf::IN_KERNEL),
        ("XEN_LEGACY_MAX_VCPUS", pv::LEGACY_MAX_VCPUS as u64),
        ("sizeof(struct vcpu_info)", pv::VCPU_INFO_SIZE as u64),
        (
            "offsetof(struct vcpu_info, evtchn_upcall_mask)",
            pv::VCPU_INFO_UPCALL_MASK_AT as u64,
        ),
        ("VGCF_online", pv::vgcf::ONLINE),
        ("FLAT_KERNEL_CS", pv::FLAT_KERNEL_CS_X86_64 as u64),
        ("FLAT_KERNEL_DS", pv::FLAT_KERNEL_DS_X86_64 as u64),
        ("FLAT_KERNEL_SS", pv::FLAT_KERNEL_SS_X86_64 as u64),
        (
            "XEN_DOMCTL_get_paging_mempool_size",
            domctl::cmd::GET_PAGING_MEMPOOL_SIZE as u64,
        ),
        (
            "XEN_DOMCTL_set_paging_mempool_size",
            domctl::cmd::SET_PAGING_MEMPOOL_SIZE as u64,
        ),
        ("XEN_DOMINF_dying", domctl::dominf::DYING as u64),
        ("XEN_DOMINF_hvm_guest", domctl::dominf::HVM_GUEST as u64),
        ("XEN_DOMINF_shutdown", domctl::dominf::SHUTDOWN as u64),
        ("XEN_DOMINF_paused", domctl::dominf::PAUSED as u64),
        ("XEN_DOMINF_blocked", domctl::dominf::BLOCKED as u64),
        ("XEN_DOMINF_running", domctl::dominf::RUNNING as u64),
        ("XEN_DOMINF_debugged", domctl::dominf::DEBUGGED as u64),
        ("XEN_DOMINF_xs_domain", domctl::dominf::XS_DOMAIN as u64),
        ("XEN_DOMINF_hap", domctl::dominf::HAP as u64),
        (
            "XEN_DOMINF_shutdownshift",
            domctl::dominf::SHUTDOWN_SHIFT as u64,
        ),
        (
            "XEN_DOMINF_shutdownmask",
            domctl::dominf::SHUTDOWN_MASK as u64,
        ),
        ("XEN_SYSCTL_physinfo", sysctl::cmd::PHYSINFO as u64),
        (
            "XEN_SYSCTL_getdomaininfolist",
            sysctl::cmd::GETDOMAININFOLIST as u64,
        ),
        ("XEN_SYSCTL_PHYSCAP_hvm", sysctl::physcap::HVM as u64),
        ("XEN_SYSCTL_PHYSCAP_pv", sysctl::physcap::PV as u64),
        (
            "XEN_SYSCTL_PHYSCAP_directio",
            sysctl::physcap::DIRECTIO as u64,
        ),
        ("XEN_SYSCTL_PHYSCAP_hap", sysctl::physcap::HAP as u64),
        ("XEN_SYSCTL_PHYSCAP_shadow", sysctl::physcap::SHADOW as u64),
        (
            "XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share",
            sysctl::physcap::IOMMU_HAP_PT_SHARE as u64,
        ),
        (
            "XEN_SYSCTL_PHYSCAP_vmtrace",
            sysctl::physcap::VMTRACE as u64,
        ),
        ("XEN_SYSCTL_PHYSCAP_vpmu", sysctl::physcap::VPMU as u64),
        (
            "XEN_SYSCTL_PHYSCAP_gnttab_v1",
            sysctl::physcap::GNTTAB_V1 as u64,
        ),
        (
            "XEN_SYSCTL_PHYSCAP_gnttab_v2",
            sysctl::physcap::GNTTAB_V2 as u64,
        ),
        (
            "XENMEM_decrease_reservation",
            memory::op::DECREASE_RESERVATION as u64,
        ),
        (
            "XENMEM_populate_physmap",
            memory::op::POPULATE_PHYSMAP as u64,
        ),
        ("XENMEM_add_to_physmap", memory::op::ADD_TO_PHYSMAP as u64),
        ("XENMEM_set_memory_map", memory::op::SET_MEMORY_MAP as u64),
        (
            "XENMEM_remove_from_physmap",
            memory::op::REMOVE_FROM_PHYSMAP as u64,
        ),
        ("XENMEM_claim_pages", memory::op::CLAIM_PAGES as u64),
        (
            "XENMEM_acquire_resource",
            memory::op::ACQUIRE_RESOURCE as u64,
        ),
        (
            "XENMAPSPACE_shared_info",
            memory::mapspace::SHARED_INFO as u64,
        ),
        (
            "XENMAPSPACE_grant_table",
            memory::mapspace::GRANT_TABLE as u64,
        ),
        (
            "XENMEM_resource_ioreq_server",
            memory::resource::IOREQ_SERVER as u64,
        ),
        (
            "XENMEM_resource_grant_table",
            memory::resource::GRANT_TABLE as u64,
        ),
        (
            "XENMEM_resource_grant_table_id_shared",
            memory::resource::GRANT_TABLE_ID_SHARED as u64,
        ),
        (
            "XENMEM_resource_grant_table_id_status",
            memory::resource::GRANT_TABLE_ID_STATUS as u64,
        ),
        ("HVMOP_set_param", hvm::op::SET_PARAM as u64),
        ("HVMOP_get_param", hvm::op::GET_PARAM as u64),
        ("HVM_FILE_MAGIC", hvm::HVM_FILE_MAGIC as u64),
        ("HVM_FILE_VERSION", hvm::HVM_FILE_VERSION as u64),
        (
            "XEN_X86_FPU_INITIALISED",
            hvm::XEN_X86_FPU_INITIALISED as u64,
        ),
        ("HVM_SAVE_CODE(END)", hvm::typecode::END as u64),
        ("HVM_SAVE_CODE(HEADER)", hvm::typecode::HEADER as u64),
        ("HVM_SAVE_CODE(CPU)", hvm::typecode::CPU as u64),
        ("HVM_SAVE_CODE(MTRR)", hvm::typecode::MTRR as u64),
        ("HVM_SAVE_LENGTH(HEADER)", size_of::<HvmSaveHeader>() as u64),
        ("HVM_SAVE_LENGTH(CPU)", size_of::<HvmHwCpu>() as u64),
        ("HVM_SAVE_LENGTH(MTRR)", size_of::<HvmHwMtrr>() as u64),
        ("MTRR_VCNT", hvm::MTRR_VCNT as u64),
        ("NUM_FIXED_MSR", hvm::NUM_FIXED_MSR as u64),
        ("__HYPERVISOR_memory_op", misc::hypercall::MEMORY_OP),
        ("__HYPERVISOR_xen_version", misc::hypercall::XEN_VERSION),
        (
            "__HYPERVISOR_grant_table_op",
            misc::hypercall::GRANT_TABLE_OP,
        ),
        ("__HYPERVISOR_sched_op", misc::hypercall::SCHED_OP),
        (
            "__HYPERVISOR_event_channel_op",
            misc::hypercall::EVENT_CHANNEL_OP,
        ),
        ("__HYPERVISOR_hvm_op", misc::hypercall::HVM_OP),
        ("__HYPERVISOR_sysctl", misc::hypercall::SYSCTL),
        ("__HYPERVISOR_domctl", misc::hypercall::DOMCTL),
        ("DOMID_SELF", misc::DOMID_SELF as u64),
        ("DOMID_INVALID", misc::DOMID_INVALID as u64),
        ("DOMID_FIRST_RESERVED", misc::DOMID_FIRST_RESERVED as u64),
        (
            "EVTCHNOP_alloc_unbound",
            misc::EVTCHNOP_ALLOC_UNBOUND as u64,
        ),
        (
            "SCHEDOP_remote_shutdown",
            misc::SCHEDOP_REMOTE_SHUTDOWN as u64,
        ),
        ("SHUTDOWN_poweroff", misc::shutdown::POWEROFF as u64),
        ("SHUTDOWN_reboot", misc::shutdown::REBOOT as u64),
        ("SHUTDOWN_suspend", misc::shutdown::SUSPEND as u64),
        ("SHUTDOWN_crash", misc::shutdown::CRASH as u64),
        ("SHUTDOWN_watchdog", misc::shutdown::WATCHDOG as u64),
        ("SHUTDOWN_soft_reset", misc::shutdown::SOFT_RESET as u64),
        ("GTF_permit_access", misc::GTF_PERMIT_ACCESS as u64),
        ("XENVER_version", misc::xenver::VERSION as u64),
        ("XENVER_extraversion", misc::xenver::EXTRAVERSION as u64),
        ("XENVER_capabilities", misc::xenver::CAPABILITIES as u64),
        ("XEN_EXTRAVERSION_LEN", misc::EXTRAVERSION_LEN as u64),
        ("XEN_CAPABILITIES_INFO_LEN", misc::CAPABILITIES_LEN as u64),
        ("XEN_DOMCTL_CDF_hvm", 1),
        ("XEN_DOMCTL_CDF_hap", 2),
        ("XEN_X86_EMU_LAPIC", 1),
    ];
    for (c, v) in consts {
        f.add(*c, *v);
    }
    f
}

const PRELUDE: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/domctl.h>
#include <xen/sysctl.h>
#include <xen/memory.h>
#include <xen/version.h>
#include <xen/event_channel.h>
#include <xen/sched.h>
#include <xen/grant_table.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/save.h>
int main(void) {
"#;

#[test]
fn layouts_and_constants_match_the_4_17_headers() {
    if !std::path::Path::new("/usr/include/xen/domctl.h").exists() {
        panic!(
            "/usr/include/xen/domctl.h is missing: install Debian's libxen-dev to run this test"
        );
    }
    let facts = facts();
    let mut src = String::from(PRELUDE);
    for (i, fact) in facts.0.iter().enumerate() {
        let _ = writeln!(
            src,
            "    printf(\"{i} %llu\\n\", (unsigned long long)({}));",
            fact.c
        );
    }
    src.push_str("    return 0;\n}\n");

    let dir = tempfile::tempdir().expect("temp dir");
    let c = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&c, &src).expect("write C source");
    let out = Command::new("gcc")
        .args(["-D__XEN_TOOLS__", "-std=gnu11", "-Wall", "-o"])
        .arg(&exe)
        .arg(&c)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run layout program");
    assert!(run.status.success());
    let text = String::from_utf8_lossy(&run.stdout);
    let c_values: BTreeMap<usize, u64> = text
        .lines()
        .filter_map(|l| {
            let (i, v) = l.split_once(' ')?;
            Some((i.parse().ok()?, v.parse().ok()?))
        })
        .collect();
    assert_eq!(c_values.len(), facts.0.len(), "C program output:\n{text}");

    let mut bad = Vec::new();
    for (i, fact) in facts.0.iter().enumerate() {
        let c = c_values.get(&i).copied();
        if c != Some(fact.rust) {
            bad.push(format!("{}: C {:?}, Rust {}", fact.c, c, fact.rust));
        }
    }
    assert!(bad.is_empty(), "mismatches:\n{}", bad.join("\n"));
    // Guard against the test silently checking nothing.
    assert!(facts.0.len() > 250, "only {} facts", facts.0.len());
}

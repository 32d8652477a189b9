//! 64-bit PV guests (public/arch-x86/xen-x86_64.h, arch-x86/xen.h, xen.h): the vCPU
//! context `XEN_DOMCTL_setvcpucontext` takes, `mmuext_op`, and the constants a PV
//! builder needs. Same layouts in 4.17 .. 4.22 (x86-64).
//!
//! | struct | size | notable offsets |
//! |---|---|---|
//! | `cpu_user_regs` | 200 | rsi @104, rip @128, cs @136, rflags @144, rsp @152, ss @160, es @168, ds @176, fs @184, gs @192 |
//! | `trap_info` | 16 | address @8 |
//! | `vcpu_guest_context` | 5168 | flags @512, user_regs @520, trap_ctxt @720, kernel_ss @4968, kernel_sp @4976, ctrlreg @4984, debugreg @5048 |
//! | `mmuext_op` | 24 | arg1 @8, arg2 @16 |

use crate::wire::abi_struct;

/// `__HYPERVISOR_mmuext_op`.
pub const HYPERCALL_MMUEXT_OP: u64 = 26;

/// `MMUEXT_*` commands.
pub mod mmuext {
    /// `MMUEXT_PIN_L1_TABLE`.
    pub const PIN_L1_TABLE: u32 = 0;
    /// `MMUEXT_PIN_L2_TABLE`.
    pub const PIN_L2_TABLE: u32 = 1;
    /// `MMUEXT_PIN_L3_TABLE`.
    pub const PIN_L3_TABLE: u32 = 2;
    /// `MMUEXT_PIN_L4_TABLE`.
    pub const PIN_L4_TABLE: u32 = 3;
    /// `MMUEXT_UNPIN_TABLE`.
    pub const UNPIN_TABLE: u32 = 4;
}

/// `VGCF_*` flags of [`VcpuGuestContextX86_64::flags`].
pub mod vgcf {
    /// The FPU state is valid.
    pub const I387_VALID: u64 = 1 << 0;
    /// The vCPU starts in kernel mode.
    pub const IN_KERNEL: u64 = 1 << 2;
    /// The vCPU is brought online.
    pub const ONLINE: u64 = 1 << 5;
}

/// `FLAT_KERNEL_CS` (64-bit: `FLAT_RING3_CS64`, GDT entry 262).
pub const FLAT_KERNEL_CS_X86_64: u16 = 0xe033;
/// `FLAT_KERNEL_DS` (64-bit: `FLAT_RING3_DS64`, the null selector).
pub const FLAT_KERNEL_DS_X86_64: u16 = 0x0000;
/// `FLAT_KERNEL_SS` (64-bit: `FLAT_RING3_SS64`, GDT entry 261).
pub const FLAT_KERNEL_SS_X86_64: u16 = 0xe02b;
/// `XEN_LEGACY_MAX_VCPUS`: the `vcpu_info` slots in shared_info.
pub const LEGACY_MAX_VCPUS: usize = 32;
/// `sizeof(struct vcpu_info)` (x86-64).
pub const VCPU_INFO_SIZE: usize = 64;
/// `offsetof(struct vcpu_info, evtchn_upcall_mask)`.
pub const VCPU_INFO_UPCALL_MASK_AT: usize = 1;

/// `X86_DR6_DEFAULT`: the debug status register's reset value.
pub const DR6_DEFAULT: u64 = 0xffff_0ff0;
/// `X86_DR7_DEFAULT`: the debug control register's reset value.
pub const DR7_DEFAULT: u64 = 0x0000_0400;

abi_struct! {
    /// `struct cpu_user_regs` (x86-64): the general registers, then the private
    /// error code and vector, rip, the selectors and rflags, each selector in an
    /// 8-byte slot.
    pub struct CpuUserRegsX86_64 = ("struct cpu_user_regs", 200) {
        /// r15.
        pub r15: u64,
        /// r14.
        pub r14: u64,
        /// r13.
        pub r13: u64,
        /// r12.
        pub r12: u64,
        /// rbp.
        pub rbp: u64,
        /// rbx.
        pub rbx: u64,
        /// r11.
        pub r11: u64,
        /// r10.
        pub r10: u64,
        /// r9.
        pub r9: u64,
        /// r8.
        pub r8: u64,
        /// rax.
        pub rax: u64,
        /// rcx.
        pub rcx: u64,
        /// rdx.
        pub rdx: u64,
        /// rsi: a PV kernel finds start_info's virtual address here.
        pub rsi: u64,
        /// rdi.
        pub rdi: u64,
        /// Private to Xen.
        pub error_code: u32,
        /// Private to Xen.
        pub entry_vector: u32,
        /// rip.
        pub rip: u64,
        /// cs.
        pub cs: u16,
        /// Padding.
        pub pad0: u16,
        /// The saved event-channel upcall mask.
        pub saved_upcall_mask: u8,
        /// Padding.
        pub pad1: [u8; 3],
        /// rflags.
        pub rflags: u64,
        /// rsp.
        pub rsp: u64,
        /// ss.
        pub ss: u16,
        /// Padding.
        pub pad2: [u16; 3],
        /// es.
        pub es: u16,
        /// Padding.
        pub pad3: [u16; 3],
        /// ds.
        pub ds: u16,
        /// Padding.
        pub pad4: [u16; 3],
        /// fs.
        pub fs: u16,
        /// Padding.
        pub pad5: [u16; 3],
        /// gs.
        pub gs: u16,
        /// Padding.
        pub pad6: [u16; 3],
    }
}

abi_struct! {
    /// `struct trap_info`: one entry of a PV vCPU's virtual IDT.
    pub struct TrapInfo = ("struct trap_info", 16) {
        /// Exception vector.
        pub vector: u8,
        /// Privilege level (bits 0-3), clear-event-enable (bit 4).
        pub flags: u8,
        /// Code selector.
        pub cs: u16,
        /// Padding.
        pub pad: u32,
        /// Handler address.
        pub address: u64,
    }
}

abi_struct! {
    /// `struct vcpu_guest_context` as the x86-64 tools see it (`vcpu_guest_context_x86_64`).
    pub struct VcpuGuestContextX86_64 = ("struct vcpu_guest_context", 5168) {
        /// FXSAVE area.
        pub fpu_ctxt: [u8; 512],
        /// `VGCF_*`.
        pub flags: u64,
        /// The registers.
        pub user_regs: CpuUserRegsX86_64,
        /// The virtual IDT.
        pub trap_ctxt: [TrapInfo; 256],
        /// LDT linear address.
        pub ldt_base: u64,
        /// LDT entries.
        pub ldt_ents: u64,
        /// GDT machine frames.
        pub gdt_frames: [u64; 16],
        /// GDT entries.
        pub gdt_ents: u64,
        /// Kernel stack selector (TSS SS1).
        pub kernel_ss: u64,
        /// Kernel stack pointer (TSS SP1).
        pub kernel_sp: u64,
        /// CR0..CR7; CR3 holds the L4 table's mfn << 12.
        pub ctrlreg: [u64; 8],
        /// DR0..DR7.
        pub debugreg: [u64; 8],
        /// Event callback address.
        pub event_callback_eip: u64,
        /// Failsafe callback address.
        pub failsafe_callback_eip: u64,
        /// syscall entry address.
        pub syscall_callback_eip: u64,
        /// `VMASST_TYPE_*` bitmap.
        pub vm_assist: u64,
        /// fs base.
        pub fs_base: u64,
        /// Kernel gs base.
        pub gs_base_kernel: u64,
        /// User gs base.
        pub gs_base_user: u64,
    }
}

abi_struct! {
    /// `struct mmuext_op` (x86-64): a command and two 8-byte argument unions.
    pub struct MmuextOp = ("struct mmuext_op", 24) {
        /// `MMUEXT_*`.
        pub cmd: u32,
        /// Padding.
        pub pad: u32,
        /// `arg1`: the frame (`mfn`) or a linear address.
        pub arg1: u64,
        /// `arg2`: `nr_ents`, a vcpumask handle or `src_mfn`.
        pub arg2: u64,
    }
}

/// The vCPU context libxenguest's `vcpu_x86_64` builds: everything zero but rip, rsp,
/// rsi, rflags, cr3 (`cr3_mfn << 12`), the flat kernel selectors, `kernel_ss` = ss,
/// `kernel_sp`, the debug registers' reset values and `VGCF_in_kernel | VGCF_online`.
pub fn initial_context(
    rip: u64,
    rsp: u64,
    rsi: u64,
    rflags: u64,
    cr3_mfn: u64,
    kernel_sp: u64,
) -> VcpuGuestContextX86_64 {
    let mut ctrlreg = [0u64; 8];
    ctrlreg[3] = cr3_mfn << 12;
    let mut debugreg = [0u64; 8];
    debugreg[6] = DR6_DEFAULT;
    debugreg[7] = DR7_DEFAULT;
    VcpuGuestContextX86_64 {
        flags: vgcf::IN_KERNEL | vgcf::ONLINE,
        user_regs: CpuUserRegsX86_64 {
            rip,
            rsp,
            rsi,
            rflags,
            cs: FLAT_KERNEL_CS_X86_64,
            ds: FLAT_KERNEL_DS_X86_64,
            es: FLAT_KERNEL_DS_X86_64,
            fs: FLAT_KERNEL_DS_X86_64,
            gs: FLAT_KERNEL_DS_X86_64,
            ss: FLAT_KERNEL_SS_X86_64,
            ..Default::default()
        },
        kernel_ss: u64::from(FLAT_KERNEL_SS_X86_64),
        kernel_sp,
        ctrlreg,
        debugreg,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wire;

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn initial_context_bytes_sit_at_the_c_offsets() {
        let c = initial_context(0x1111, 0x2222, 0x3333, 1 << 9, 0x4_5678, 0x2222);
        let b = c.to_bytes();
        assert_eq!(b.len(), 5168);
        assert_eq!(u64_at(&b, 512), vgcf::IN_KERNEL | vgcf::ONLINE);
        assert_eq!(u64_at(&b, 520 + 104), 0x3333, "rsi");
        assert_eq!(u64_at(&b, 520 + 128), 0x1111, "rip");
        assert_eq!(&b[520 + 136..520 + 138], &0xe033u16.to_le_bytes(), "cs");
        assert_eq!(u64_at(&b, 520 + 144), 1 << 9, "rflags");
        assert_eq!(u64_at(&b, 520 + 152), 0x2222, "rsp");
        assert_eq!(&b[520 + 160..520 + 162], &0xe02bu16.to_le_bytes(), "ss");
        assert_eq!(u64_at(&b, 4968), 0xe02b, "kernel_ss");
        assert_eq!(u64_at(&b, 4976), 0x2222, "kernel_sp");
        assert_eq!(u64_at(&b, 4984 + 3 * 8), 0x4_5678 << 12, "cr3");
        assert_eq!(u64_at(&b, 5048 + 6 * 8), DR6_DEFAULT);
        assert_eq!(u64_at(&b, 5048 + 7 * 8), DR7_DEFAULT);
        let nonzero = b.iter().filter(|&&x| x != 0).count();
        assert!(
            nonzero < 40,
            "everything else is zero ({nonzero} bytes set)"
        );
        assert_eq!(VcpuGuestContextX86_64::decode(&b).unwrap(), c);
    }

    #[test]
    fn mmuext_pin_bytes() {
        let op = MmuextOp {
            cmd: mmuext::PIN_L4_TABLE,
            arg1: 0xabcd,
            ..Default::default()
        };
        let b = op.to_bytes();
        assert_eq!(&b[0..4], &3u32.to_le_bytes());
        assert_eq!(u64_at(&b, 8), 0xabcd);
        assert_eq!(u64_at(&b, 16), 0);
        let t = TrapInfo {
            vector: 14,
            address: 7,
            ..Default::default()
        };
        assert_eq!(u64_at(&t.to_bytes(), 8), 7);
    }
}

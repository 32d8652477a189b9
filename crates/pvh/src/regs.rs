//! The BSP's initial register state for the PVH ABI.

use serde::Serialize;

/// `CR0.PE`.
pub const X86_CR0_PE: u64 = 1 << 0;
/// `CR0.ET`.
pub const X86_CR0_ET: u64 = 1 << 4;
/// DR6 reset value.
pub const X86_DR6_DEFAULT: u64 = 0xffff_0ff0;
/// DR7 reset value.
pub const X86_DR7_DEFAULT: u64 = 0x400;
/// RFLAGS with only the always-one bit 1 set (IF, TF, VM clear).
pub const RFLAGS_DEFAULT: u64 = 0x2;

/// A segment register in the form of Xen's HVM CPU save record (`hvm_hw_cpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SegReg {
    /// Selector.
    pub sel: u16,
    /// Base.
    pub base: u64,
    /// Limit.
    pub limit: u32,
    /// Access rights in Xen's packed "arbytes" form.
    pub arbytes: u32,
}

/// Register values the toolstack puts in the BSP's `hvm_hw_cpu` record; everything not
/// named is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuRegs {
    /// Instruction pointer: the PVH entry point.
    pub rip: u64,
    /// The start_info block's physical address.
    pub rbx: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0 = PE | ET: protected mode, paging off.
    pub cr0: u64,
    /// CR4 = 0.
    pub cr4: u64,
    /// Flat 32-bit code segment.
    pub cs: SegReg,
    /// Flat data segment.
    pub ds: SegReg,
    /// Flat data segment.
    pub es: SegReg,
    /// Flat data segment.
    pub ss: SegReg,
    /// Task register (a busy 32-bit TSS of 0x68 bytes).
    pub tr: SegReg,
    /// DR6.
    pub dr6: u64,
    /// DR7.
    pub dr7: u64,
}

impl CpuRegs {
    /// The PVH entry state: 32-bit protected mode, paging off, flat segments, `ebx` = start_info.
    pub fn pvh(entry: u64, start_info: u64) -> CpuRegs {
        let flat = |arbytes| SegReg {
            sel: 0,
            base: 0,
            limit: 0xffff_ffff,
            arbytes,
        };
        CpuRegs {
            rip: entry,
            rbx: start_info,
            rflags: RFLAGS_DEFAULT,
            cr0: X86_CR0_PE | X86_CR0_ET,
            cr4: 0,
            cs: flat(0xc9b),
            ds: flat(0xc93),
            es: flat(0xc93),
            ss: flat(0xc93),
            tr: SegReg {
                sel: 0,
                base: 0,
                limit: 0x67,
                arbytes: 0x8b,
            },
            dr6: X86_DR6_DEFAULT,
            dr7: X86_DR7_DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvh_abi_values() {
        let r = CpuRegs::pvh(0x100000, 0x200000);
        assert_eq!(r.cr0, 0x11);
        assert_eq!((r.rip, r.rbx), (0x100000, 0x200000));
        assert_eq!(r.rflags & (1 << 9 | 1 << 8 | 1 << 17), 0);
        // arbytes: type 0xb (code, exec/read, accessed), S, DPL 0, P, D/B, G.
        assert_eq!(r.cs.arbytes & 0xf, 0xb);
        assert_eq!(r.cs.arbytes & (1 << 10 | 1 << 11), 1 << 10 | 1 << 11);
        assert_eq!(r.ds.arbytes & 0xf, 0x3);
        assert_eq!(r.cs.limit, u32::MAX);
        assert_eq!((r.tr.limit, r.tr.arbytes), (0x67, 0x8b));
    }
}

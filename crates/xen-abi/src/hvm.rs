//! HVM parameters (public/hvm/hvm_op.h) and HVM save records (public/hvm/save.h,
//! public/arch-x86/hvm/save.h), with an encoder that builds a `sethvmcontext` blob and a
//! parser for a `gethvmcontext` one.
//!
//! The save record layouts rxl writes (descriptor 8, header 24, CPU 1032, MTRR 240) are
//! the same in 4.17 .. 4.22.

use crate::wire::{abi_struct, Wire};
use crate::AbiError;

/// `HVMOP_*` sub-commands of `hvm_op`.
pub mod op {
    /// `HVMOP_set_param`.
    pub const SET_PARAM: u32 = 0;
    /// `HVMOP_get_param`.
    pub const GET_PARAM: u32 = 1;
}

abi_struct! {
    /// `struct xen_hvm_param`.
    pub struct HvmParam = ("struct xen_hvm_param", 16) {
        /// The domain.
        pub domid: u16,
        /// Padding.
        pub pad: u16,
        /// `HVM_PARAM_*`.
        pub index: u32,
        /// The value (in for set, out for get).
        pub value: u64,
    }
}

/// Save record type codes.
pub mod typecode {
    /// `HVM_SAVE_CODE(END)`.
    pub const END: u16 = 0;
    /// `HVM_SAVE_CODE(HEADER)`.
    pub const HEADER: u16 = 1;
    /// `HVM_SAVE_CODE(CPU)`.
    pub const CPU: u16 = 2;
    /// `HVM_SAVE_CODE(MTRR)`.
    pub const MTRR: u16 = 14;
}

/// `HVM_FILE_MAGIC`.
pub const HVM_FILE_MAGIC: u32 = 0x5438_1286;
/// `HVM_FILE_VERSION`.
pub const HVM_FILE_VERSION: u32 = 1;
/// `XEN_X86_FPU_INITIALISED` in [`HvmHwCpu::flags`].
pub const XEN_X86_FPU_INITIALISED: u32 = 1;

abi_struct! {
    /// `struct hvm_save_descriptor`: precedes every record.
    pub struct HvmSaveDescriptor = ("struct hvm_save_descriptor", 8) {
        /// Record type.
        pub typecode: u16,
        /// Instance (vCPU id for per-vCPU records).
        pub instance: u16,
        /// Bytes of record after this descriptor.
        pub length: u32,
    }
}

abi_struct! {
    /// `struct hvm_save_header`.
    pub struct HvmSaveHeader = ("struct hvm_save_header", 24) {
        /// [`HVM_FILE_MAGIC`].
        pub magic: u32,
        /// [`HVM_FILE_VERSION`].
        pub version: u32,
        /// Xen changeset of the saver.
        pub changeset: u64,
        /// CPUID leaf 1 eax of the saver.
        pub cpuid: u32,
        /// Guest TSC kHz.
        pub gtsc_khz: u32,
    }
}

abi_struct! {
    /// `struct hvm_hw_cpu`: one vCPU's architectural state.
    pub struct HvmHwCpu = ("struct hvm_hw_cpu", 1032) {
        /// FXSAVE image.
        pub fpu_regs: [u8; 512],
        /// `rax`.
        pub rax: u64,
        /// `rbx`.
        pub rbx: u64,
        /// `rcx`.
        pub rcx: u64,
        /// `rdx`.
        pub rdx: u64,
        /// `rbp`.
        pub rbp: u64,
        /// `rsi`.
        pub rsi: u64,
        /// `rdi`.
        pub rdi: u64,
        /// `rsp`.
        pub rsp: u64,
        /// `r8`.
        pub r8: u64,
        /// `r9`.
        pub r9: u64,
        /// `r10`.
        pub r10: u64,
        /// `r11`.
        pub r11: u64,
        /// `r12`.
        pub r12: u64,
        /// `r13`.
        pub r13: u64,
        /// `r14`.
        pub r14: u64,
        /// `r15`.
        pub r15: u64,
        /// `rip`.
        pub rip: u64,
        /// `rflags`.
        pub rflags: u64,
        /// `cr0`.
        pub cr0: u64,
        /// `cr2`.
        pub cr2: u64,
        /// `cr3`.
        pub cr3: u64,
        /// `cr4`.
        pub cr4: u64,
        /// `dr0`.
        pub dr0: u64,
        /// `dr1`.
        pub dr1: u64,
        /// `dr2`.
        pub dr2: u64,
        /// `dr3`.
        pub dr3: u64,
        /// `dr6`.
        pub dr6: u64,
        /// `dr7`.
        pub dr7: u64,
        /// `cs` selector.
        pub cs_sel: u32,
        /// `ds` selector.
        pub ds_sel: u32,
        /// `es` selector.
        pub es_sel: u32,
        /// `fs` selector.
        pub fs_sel: u32,
        /// `gs` selector.
        pub gs_sel: u32,
        /// `ss` selector.
        pub ss_sel: u32,
        /// `tr` selector.
        pub tr_sel: u32,
        /// `ldtr` selector.
        pub ldtr_sel: u32,
        /// `cs` limit.
        pub cs_limit: u32,
        /// `ds` limit.
        pub ds_limit: u32,
        /// `es` limit.
        pub es_limit: u32,
        /// `fs` limit.
        pub fs_limit: u32,
        /// `gs` limit.
        pub gs_limit: u32,
        /// `ss` limit.
        pub ss_limit: u32,
        /// `tr` limit.
        pub tr_limit: u32,
        /// `ldtr` limit.
        pub ldtr_limit: u32,
        /// `idtr` limit.
        pub idtr_limit: u32,
        /// `gdtr` limit.
        pub gdtr_limit: u32,
        /// `cs` base.
        pub cs_base: u64,
        /// `ds` base.
        pub ds_base: u64,
        /// `es` base.
        pub es_base: u64,
        /// `fs` base.
        pub fs_base: u64,
        /// `gs` base.
        pub gs_base: u64,
        /// `ss` base.
        pub ss_base: u64,
        /// `tr` base.
        pub tr_base: u64,
        /// `ldtr` base.
        pub ldtr_base: u64,
        /// `idtr` base.
        pub idtr_base: u64,
        /// `gdtr` base.
        pub gdtr_base: u64,
        /// `cs` access rights (VMX layout).
        pub cs_arbytes: u32,
        /// `ds` access rights (VMX layout).
        pub ds_arbytes: u32,
        /// `es` access rights (VMX layout).
        pub es_arbytes: u32,
        /// `fs` access rights (VMX layout).
        pub fs_arbytes: u32,
        /// `gs` access rights (VMX layout).
        pub gs_arbytes: u32,
        /// `ss` access rights (VMX layout).
        pub ss_arbytes: u32,
        /// `tr` access rights (VMX layout).
        pub tr_arbytes: u32,
        /// `ldtr` access rights (VMX layout).
        pub ldtr_arbytes: u32,
        /// `sysenter_cs`.
        pub sysenter_cs: u64,
        /// `sysenter_esp`.
        pub sysenter_esp: u64,
        /// `sysenter_eip`.
        pub sysenter_eip: u64,
        /// `shadow_gs`.
        pub shadow_gs: u64,
        /// `msr_flags`.
        pub msr_flags: u64,
        /// `msr_lstar`.
        pub msr_lstar: u64,
        /// `msr_star`.
        pub msr_star: u64,
        /// `msr_cstar`.
        pub msr_cstar: u64,
        /// `msr_syscall_mask`.
        pub msr_syscall_mask: u64,
        /// `msr_efer`.
        pub msr_efer: u64,
        /// `msr_tsc_aux`.
        pub msr_tsc_aux: u64,
        /// `tsc`.
        pub tsc: u64,
        /// Pending event (vector, type, valid bits).
        pub pending_event: u32,
        /// Error code of the pending event.
        pub error_code: u32,
        /// `XEN_X86_FPU_INITIALISED` etc.
        pub flags: u32,
        /// Padding.
        pub pad0: u32,
    }
}

/// Variable MTRR pairs in [`HvmHwMtrr`].
pub const MTRR_VCNT: usize = 8;
/// Fixed MTRR MSRs in [`HvmHwMtrr`].
pub const NUM_FIXED_MSR: usize = 11;

abi_struct! {
    /// `struct hvm_hw_mtrr`.
    pub struct HvmHwMtrr = ("struct hvm_hw_mtrr", 240) {
        /// IA32_PAT.
        pub msr_pat_cr: u64,
        /// Base/mask pairs.
        pub msr_mtrr_var: [u64; MTRR_VCNT * 2],
        /// Fixed-range MTRRs.
        pub msr_mtrr_fixed: [u64; NUM_FIXED_MSR],
        /// IA32_MTRRCAP.
        pub msr_mtrr_cap: u64,
        /// IA32_MTRR_DEF_TYPE.
        pub msr_mtrr_def_type: u64,
    }
}

/// One record of an HVM context blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveRecord<'a> {
    /// Record type.
    pub typecode: u16,
    /// Instance.
    pub instance: u16,
    /// The record's bytes (without the descriptor).
    pub body: &'a [u8],
}

/// Split a context blob (as `gethvmcontext` returns it) into records, up to and including
/// END. Errors on a truncated record or a blob without END.
pub fn parse_records(blob: &[u8]) -> Result<Vec<SaveRecord<'_>>, AbiError> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    loop {
        let rest = blob.get(pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return Err(AbiError::Malformed {
                what: "hvm context",
                detail: format!("no END record in {} bytes", blob.len()),
            });
        }
        let desc = HvmSaveDescriptor::decode(rest).map_err(|_| AbiError::Malformed {
            what: "hvm context",
            detail: format!("truncated descriptor at offset {pos}"),
        })?;
        let body_start = pos + HvmSaveDescriptor::SIZE;
        let body_end = usize::try_from(desc.length)
            .ok()
            .and_then(|len| body_start.checked_add(len))
            .filter(|&end| end <= blob.len())
            .ok_or_else(|| AbiError::Malformed {
                what: "hvm context",
                detail: format!(
                    "record type {} at offset {pos} claims {} bytes, only {} left",
                    desc.typecode,
                    desc.length,
                    blob.len().saturating_sub(body_start)
                ),
            })?;
        let body = blob.get(body_start..body_end).unwrap_or(&[]);
        records.push(SaveRecord {
            typecode: desc.typecode,
            instance: desc.instance,
            body,
        });
        if desc.typecode == typecode::END {
            return Ok(records);
        }
        pos = body_end;
    }
}

/// The HEADER record of a context blob.
pub fn find_header(blob: &[u8]) -> Result<HvmSaveHeader, AbiError> {
    let rec = parse_records(blob)?
        .into_iter()
        .find(|r| r.typecode == typecode::HEADER)
        .ok_or(AbiError::Malformed {
            what: "hvm context",
            detail: "no HEADER record".into(),
        })?;
    let header = HvmSaveHeader::decode(rec.body)?;
    if header.magic != HVM_FILE_MAGIC {
        return Err(AbiError::Malformed {
            what: "hvm context",
            detail: format!(
                "header magic {:#x}, expected {HVM_FILE_MAGIC:#x}",
                header.magic
            ),
        });
    }
    Ok(header)
}

/// Builds a `sethvmcontext` blob: records in the order added, each after its descriptor,
/// closed by END.
#[derive(Clone, Debug, Default)]
pub struct HvmContextBuilder {
    buf: Vec<u8>,
}

impl HvmContextBuilder {
    /// An empty blob.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a record of any type.
    pub fn record<R: Wire>(mut self, typecode: u16, instance: u16, body: &R) -> Self {
        let len = u32::try_from(R::SIZE).unwrap_or(u32::MAX);
        let desc = HvmSaveDescriptor {
            typecode,
            instance,
            length: len,
        };
        self.buf.extend_from_slice(&desc.to_bytes());
        self.buf.extend_from_slice(&body.to_bytes());
        self
    }

    /// Append the HEADER record (instance 0).
    pub fn header(self, header: &HvmSaveHeader) -> Self {
        self.record(typecode::HEADER, 0, header)
    }

    /// Append a CPU record for vCPU `vcpu`.
    pub fn cpu(self, vcpu: u16, cpu: &HvmHwCpu) -> Self {
        self.record(typecode::CPU, vcpu, cpu)
    }

    /// Append an MTRR record for vCPU `vcpu`.
    pub fn mtrr(self, vcpu: u16, mtrr: &HvmHwMtrr) -> Self {
        self.record(typecode::MTRR, vcpu, mtrr)
    }

    /// Close with END and return the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let end = HvmSaveDescriptor {
            typecode: typecode::END,
            instance: 0,
            length: 0,
        };
        self.buf.extend_from_slice(&end.to_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> HvmSaveHeader {
        HvmSaveHeader {
            magic: HVM_FILE_MAGIC,
            version: HVM_FILE_VERSION,
            changeset: 0,
            cpuid: 0x806f8,
            gtsc_khz: 2_000_000,
        }
    }

    #[test]
    fn blob_layout_header_cpu_end() {
        let cpu = HvmHwCpu {
            rbx: 0x1000,
            rip: 0x10_0000,
            cr0: 0x11,
            cs_arbytes: 0xc9b,
            cs_limit: 0xffff_ffff,
            ..Default::default()
        };
        let blob = HvmContextBuilder::new()
            .header(&header())
            .cpu(0, &cpu)
            .finish();
        assert_eq!(blob.len(), 8 + 24 + 8 + 1032 + 8);
        // HEADER descriptor
        assert_eq!(&blob[0..8], &[1, 0, 0, 0, 24, 0, 0, 0]);
        assert_eq!(&blob[8..12], &HVM_FILE_MAGIC.to_le_bytes());
        // CPU descriptor, then rbx at offset 512 + 8 of the record.
        assert_eq!(&blob[32..40], &[2, 0, 0, 0, 0x08, 0x04, 0, 0]);
        assert_eq!(&blob[40 + 520..40 + 528], &0x1000u64.to_le_bytes());
        // END
        assert_eq!(&blob[blob.len() - 8..], &[0u8; 8]);

        let recs = parse_records(&blob).unwrap_or_default();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].typecode, typecode::CPU);
        assert_eq!(HvmHwCpu::decode(recs[1].body).ok(), Some(cpu));
        assert_eq!(find_header(&blob).ok(), Some(header()));
    }

    #[test]
    fn truncated_blob_is_malformed() {
        let blob = HvmContextBuilder::new().header(&header()).finish();
        assert!(parse_records(&blob[..20]).is_err());
        assert!(parse_records(&blob[..blob.len() - 8]).is_err());
        let mut bad = blob.clone();
        bad[8] ^= 0xff;
        assert!(find_header(&bad).is_err());
    }
}

//! Step `hvm`: QEMU in dom0, proven with a toolstack on real Xen. For each selected tool
//! (`RXL_E2E_HVM_TOOLS`, default `xl,rxl`):
//!
//! * an HVM guest (hvmloader, SeaBIOS, the `-machine xenfv` device model) boots a raw disk
//!   whose boot sector, assembled here on the host ([`boot_sector`]), prints [`MARKER`] on
//!   port 0xe9 (Xen's console shows it as a `(dN)` line) and, once a second, on COM1 (QEMU's
//!   serial port, on a pty); the capture prints the device model's command line, its log
//!   and the xenstore nodes the toolstack wrote, destroys the guest and lists what is left;
//! * a PVH Linux guest whose disk is a qcow2 image made on the host with `qemu-img`, served
//!   by a `-machine xenpv` device model (qdisk): the guest writes a token to the disk and
//!   reads it back, and the token is found in the qcow2 file after the destroy;
//! * an HVM guest whose device model boots a multiboot kernel directly (`kernel`,
//!   `ramdisk`, `cmdline`: `-kernel`, `-initrd`, `-append`); the kernel, assembled here
//!   ([`multiboot_kernel`]), prints [`KERNEL_MARKER`], its command line and its module's
//!   text on port 0xe9;
//! * an HVM guest whose boot sector SeaBIOS boots from an AHCI disk (`hdtype = "ahci"`),
//!   with VNC on 127.0.0.1: the device model's listener is found in /proc/net/tcp(6) and
//!   answers with the RFB banner, and nothing listens for VNC on another address.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::checks::{domid_of, excerpt, field, guest_lines, number};
use crate::markers::Capture;
use crate::packages::Tool as HostTool;
use crate::scenario::{
    script_cap, select_labels, CaptureSpec, LinuxFiles, Outcome, Step, StepFile,
};
use crate::steps::linux::{LINUX_DIR, LINUX_INIT_LINE, TIMED_LINUX_VCPUS};

/// The line the boot sector prints (without its newline).
pub const MARKER: &str = "RXL-HVM-BOOT-OK";

/// The size of the raw disk holding the boot sector (the rest is zeros).
pub const DISK_BYTES: usize = 1 << 20;

/// The environment variable that chooses the tools (comma-separated: `xl`, `rxl`).
pub const TOOLS_ENV: &str = "RXL_E2E_HVM_TOOLS";

/// The tools the step runs when `RXL_E2E_HVM_TOOLS` is not set: both, side by side.
pub const DEFAULT_TOOLS: &str = "xl,rxl";

/// Every tool the step knows.
pub const ALL_TOOLS: [&str; 2] = ["xl", "rxl"];

/// The host program that makes the qcow2 image, and its package.
pub const IMAGE_TOOLS: &[HostTool] = &[HostTool {
    program: "qemu-img",
    package: "qemu-utils",
}];

/// Where the step's files live in dom0.
const HVM_DIR: &str = "/e2e/hvm";

/// Seconds the HVM guest may take from its create to the marker on Xen's console.
const MARKER_S: u32 = 300;

/// Seconds the qdisk Linux guest may take to reach its /init.
const LINUX_BOOT_S: u32 = 150;

/// The size of the qcow2 disk (virtual; the file holds only what is written).
const QCOW2_SIZE: &str = "16M";

/// The tools named in `spec` (`RXL_E2E_HVM_TOOLS`), in the order of [`ALL_TOOLS`].
pub fn select_tools(spec: &str) -> Result<Vec<&'static str>, String> {
    select_labels(spec, &ALL_TOOLS, |t| *t)
}

/// The HVM guest's name for `tool`.
fn hvm_name(tool: &str) -> String {
    format!("hvm-{tool}")
}

/// The qdisk guest's name for `tool`.
fn qdisk_name(tool: &str) -> String {
    format!("qdisk-{tool}")
}

/// The token the qdisk guest of `tool` writes to its disk.
fn token(tool: &str) -> String {
    format!("RXL-QDISK-TOKEN-{tool}")
}

// ---------------------------------------------------------------------------------------
// The boot sector

/// How a fixup fills its field: a displacement of 1, 2 or 4 bytes relative to the end of
/// the field, or the absolute 16- or 32-bit address of the label (origin added).
#[derive(Clone, Copy)]
enum Fix {
    Rel8,
    Rel16,
    Rel32,
    Abs16,
    Abs32,
}

impl Fix {
    /// The width of the field in bytes.
    fn width(self) -> usize {
        match self {
            Fix::Rel8 => 1,
            Fix::Rel16 | Fix::Abs16 => 2,
            Fix::Rel32 | Fix::Abs32 => 4,
        }
    }
}

/// A tiny x86 assembler: bytes, labels, and relative jumps or absolute addresses fixed up
/// at the end.
#[derive(Default)]
struct Asm {
    bytes: Vec<u8>,
    labels: Vec<(&'static str, usize)>,
    /// (offset of the field, how to fill it, target label).
    fixups: Vec<(usize, Fix, &'static str)>,
}

impl Asm {
    fn emit(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }
    fn label(&mut self, name: &'static str) {
        self.labels.push((name, self.bytes.len()));
    }
    fn field(&mut self, op: &[u8], fix: Fix, target: &'static str) {
        self.emit(op);
        self.fixups.push((self.bytes.len(), fix, target));
        self.emit(&vec![0; fix.width()]);
    }
    /// An instruction `op` followed by a displacement to `target`: of one byte when
    /// `width` is 1, two when it is 2, else four.
    fn rel(&mut self, op: &[u8], width: usize, target: &'static str) {
        let fix = match width {
            1 => Fix::Rel8,
            2 => Fix::Rel16,
            _ => Fix::Rel32,
        };
        self.field(op, fix, target);
    }
    /// An instruction `op` followed by the 16-bit address (at `origin`) of `target`.
    fn abs16(&mut self, op: &[u8], target: &'static str) {
        self.field(op, Fix::Abs16, target);
    }
    /// An instruction `op` followed by the 32-bit address (at `origin`) of `target`.
    fn abs32(&mut self, op: &[u8], target: &'static str) {
        self.field(op, Fix::Abs32, target);
    }
    /// The body of a loop printing a string on port 0xe9 (the same bytes in 16- and 32-bit
    /// code): loads the next byte from (e)si, goes to `done` on a NUL, else writes it and
    /// goes back to `again`.
    fn e9_next_byte(&mut self, again: &'static str, done: &'static str) {
        self.emit(&[0xac]); // lodsb
        self.emit(&[0x84, 0xc0]); // test al, al
        self.rel(&[0x74], 1, done); // jz done
        self.emit(&[0xe6, 0xe9]); // out 0xe9, al
        self.rel(&[0xeb], 1, again); // jmp again
    }
    /// The bytes with every field filled, the code placed at address `origin`.
    fn finish(mut self, origin: u32) -> Result<Vec<u8>, String> {
        for (at, fix, target) in std::mem::take(&mut self.fixups) {
            let to = self
                .labels
                .iter()
                .find(|(n, _)| *n == target)
                .map(|(_, o)| *o)
                .ok_or_else(|| format!("x86 code: no label {target}"))?;
            let addr = u32::try_from(to)
                .ok()
                .and_then(|t| t.checked_add(origin))
                .ok_or_else(|| format!("x86 code: {target} is out of reach"));
            let rel = to as i64 - (at + fix.width()) as i64;
            let too_far = || format!("x86 code: jump to {target} too far");
            match fix {
                Fix::Rel8 => {
                    let d = i8::try_from(rel).map_err(|_| too_far())?;
                    self.bytes[at] = d as u8;
                }
                Fix::Rel16 => {
                    let d = i16::try_from(rel).map_err(|_| too_far())?;
                    self.bytes[at..at + 2].copy_from_slice(&d.to_le_bytes());
                }
                Fix::Rel32 => {
                    let d = i32::try_from(rel).map_err(|_| too_far())?;
                    self.bytes[at..at + 4].copy_from_slice(&d.to_le_bytes());
                }
                Fix::Abs16 => {
                    let a = u16::try_from(addr?)
                        .map_err(|_| format!("x86 code: {target} is out of reach"))?;
                    self.bytes[at..at + 2].copy_from_slice(&a.to_le_bytes());
                }
                Fix::Abs32 => {
                    self.bytes[at..at + 4].copy_from_slice(&addr?.to_le_bytes());
                }
            }
        }
        Ok(self.bytes)
    }
}

/// Where the BIOS loads a boot sector and jumps to (0000:7C00).
const BOOT_ORIGIN: u16 = 0x7c00;

/// The line the boot sector prints when it sees the ACPI power button (without its
/// newline).
pub const BUTTON: &str = "RXL-HVM-POWER-BUTTON";

/// Xen's PM1a status register of an HVM guest with qemu-xen (the "V1" ACPI I/O ports,
/// `ACPI_PM1A_EVT_BLK_ADDRESS_V1` in xen/include/public/hvm/ioreq.h): Xen sets its
/// power button bit ([`PWRBTN_STS`]) for `XEN_DOMCTL_SENDTRIGGER_POWER`.
const PM1A_STS: u16 = 0xb000;
/// PM1a's power button status bit.
const PWRBTN_STS: u16 = 1 << 8;
/// The PM1a control register (`ACPI_PM1A_CNT_BLK_ADDRESS_V1`), the device model's
/// PIIX4 power management: sleep enable with sleep type 0 (Xen's DSDT's `\_S5`) is a soft
/// power-off, which QEMU passes to Xen as the domain's poweroff.
const PM1A_CNT: u16 = 0xb004;
/// SLP_EN, with SLP_TYP 0.
const SOFT_OFF: u16 = 1 << 13;

/// The 512-byte boot sector: in 16-bit real mode it writes `MARKER\n` to port 0xe9 once,
/// then to COM1 (0x3f8, waiting for the transmitter-empty bit 0x20 of the line status
/// register 0x3fd before each byte) about once a second forever, halting with interrupts
/// on in between (the BIOS timer, 18.2 ticks a second, wakes it): the guest stays up,
/// idle, and a serial reader that attaches late still sees the marker. Once a second it
/// also looks at the ACPI power button: when it was pressed it prints [`BUTTON`] on port
/// 0xe9 and powers the guest off, as an ACPI operating system does.
pub fn boot_sector() -> Result<[u8; 512], String> {
    let mut a = Asm::default();
    a.emit(&[0xfa]); // cli
    a.emit(&[0x31, 0xc0]); // xor ax, ax
    a.emit(&[0x8e, 0xd8]); // mov ds, ax
    a.emit(&[0x8e, 0xd0]); // mov ss, ax
    a.emit(&[0xbc, 0x00, 0x7c]); // mov sp, 0x7c00
    a.emit(&[0xfc]); // cld (lodsb counts up)
    a.abs16(&[0xbe], "msg"); // mov si, msg
    a.rel(&[0xe8], 2, "e9_puts"); // call e9_puts
    a.label("again");
    a.abs16(&[0xbe], "msg"); // mov si, msg
    a.rel(&[0xe8], 2, "com1_puts"); // call com1_puts
    let [sts_lo, sts_hi] = PM1A_STS.to_le_bytes();
    a.emit(&[0xba, sts_lo, sts_hi]); // mov dx, PM1A_STS
    a.emit(&[0xed]); // in ax, dx
    let [btn_lo, btn_hi] = PWRBTN_STS.to_le_bytes();
    a.emit(&[0xa9, btn_lo, btn_hi]); // test ax, PWRBTN_STS
    a.rel(&[0x74], 1, "no_button"); // jz no_button
    a.abs16(&[0xbe], "button"); // mov si, button
    a.rel(&[0xe8], 2, "e9_puts"); // call e9_puts
    let [off_lo, off_hi] = SOFT_OFF.to_le_bytes();
    a.emit(&[0xb8, off_lo, off_hi]); // mov ax, SOFT_OFF
    let [cnt_lo, cnt_hi] = PM1A_CNT.to_le_bytes();
    a.emit(&[0xba, cnt_lo, cnt_hi]); // mov dx, PM1A_CNT
    a.emit(&[0xef]); // out dx, ax
    a.label("no_button");
    a.emit(&[0xb9, 18, 0x00]); // mov cx, 18 (timer ticks: about a second)
    a.label("tick");
    a.emit(&[0xfb]); // sti
    a.emit(&[0xf4]); // hlt (until the next interrupt)
    a.rel(&[0xe2], 1, "tick"); // loop tick
    a.rel(&[0xeb], 1, "again"); // jmp again

    a.label("e9_puts"); // prints the NUL-terminated string at ds:si on port 0xe9
    a.e9_next_byte("e9_puts", "e9_done");
    a.label("e9_done");
    a.emit(&[0xc3]); // ret

    a.label("com1_puts"); // prints the NUL-terminated string at ds:si on COM1
    a.emit(&[0xac]); // lodsb
    a.emit(&[0x84, 0xc0]); // test al, al
    a.rel(&[0x74], 1, "com1_done"); // jz com1_done
    a.emit(&[0x88, 0xc4]); // mov ah, al (keep the byte)
    a.emit(&[0xba, 0xfd, 0x03]); // mov dx, 0x3fd (line status register)
    a.label("com1_wait");
    a.emit(&[0xec]); // in al, dx
    a.emit(&[0xa8, 0x20]); // test al, 0x20 (transmitter holding register empty)
    a.rel(&[0x74], 1, "com1_wait"); // jz com1_wait
    a.emit(&[0x88, 0xe0]); // mov al, ah
    a.emit(&[0xba, 0xf8, 0x03]); // mov dx, 0x3f8 (transmit register)
    a.emit(&[0xee]); // out dx, al
    a.rel(&[0xeb], 1, "com1_puts"); // jmp com1_puts
    a.label("com1_done");
    a.emit(&[0xc3]); // ret

    a.label("msg");
    a.emit(MARKER.as_bytes());
    a.emit(b"\n\0");
    a.label("button");
    a.emit(BUTTON.as_bytes());
    a.emit(b"\n\0");

    let code = a.finish(u32::from(BOOT_ORIGIN))?;
    if code.len() > 510 {
        return Err(format!(
            "boot sector: {} bytes of code, at most 510 fit",
            code.len()
        ));
    }
    let mut sector = [0u8; 512];
    sector[..code.len()].copy_from_slice(&code);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    Ok(sector)
}

/// The HVM guest's raw disk: the boot sector, then zeros up to [`DISK_BYTES`].
pub fn boot_disk() -> Result<Vec<u8>, String> {
    let mut disk = vec![0u8; DISK_BYTES];
    disk[..512].copy_from_slice(&boot_sector()?);
    Ok(disk)
}

// ---------------------------------------------------------------------------------------
// The multiboot kernel

/// The line the multiboot kernel prints first (without its newline).
pub const KERNEL_MARKER: &str = "RXL-HVM-KERNEL-OK";

/// Where the multiboot kernel is loaded and runs: 1 MiB.
pub const KERNEL_LOAD: u32 = 0x10_0000;

/// The memory from [`KERNEL_LOAD`] the kernel owns: its image, then zeroed memory (the
/// header's bss) whose top is the kernel's stack.
const KERNEL_SPAN: u32 = 0x2000;

/// The room the kernel keeps for its stack at the top of [`KERNEL_SPAN`].
const KERNEL_STACK: u32 = 0x1000;

/// The multiboot (version 1) header's magic number.
const MULTIBOOT_MAGIC: u32 = 0x1bad_b002;

/// The header flag that says the header gives the load addresses (the "a.out kludge"),
/// so the loader takes the file as a flat image instead of looking for an ELF header.
const MULTIBOOT_ADDRESSES: u32 = 1 << 16;

/// The size of the header: magic, flags, checksum and the five addresses.
const MULTIBOOT_HEADER_LEN: u32 = 32;

/// The multiboot kernel as a flat image loaded at [`KERNEL_LOAD`]: the multiboot header
/// (magic, flags with only [`MULTIBOOT_ADDRESSES`], checksum, then header, load, load end,
/// bss end and entry addresses), then 32-bit code entered in protected mode with the
/// multiboot information's address in EBX. The code sets its stack at the top of
/// [`KERNEL_SPAN`] and writes to port 0xe9, each line ending in a newline:
/// [`KERNEL_MARKER`]; the command line (the information's `cmdline`, at EBX+16, when its
/// flag bit 2 is set); the text of the first module (from its start up to a NUL or its
/// end; `mods_count` at EBX+20 and `mods_addr` at EBX+24, when flag bit 3 is set and
/// there is one). Then it halts with interrupts off, forever.
pub fn multiboot_kernel() -> Result<Vec<u8>, String> {
    let mut a = Asm::default();
    a.emit(&[0xfa]); // cli
    a.emit(&[0xfc]); // cld (lodsb counts up)
    a.emit(&[0xbc]); // mov esp, imm32 (the top of the kernel's memory)
    a.emit(&(KERNEL_LOAD + KERNEL_SPAN).to_le_bytes());
    a.emit(&[0x89, 0xdd]); // mov ebp, ebx (the multiboot information)
    a.abs32(&[0xbe], "marker"); // mov esi, marker
    a.emit(&[0xbf, 0xff, 0xff, 0xff, 0xff]); // mov edi, 0xffffffff (no end but the NUL)
    a.rel(&[0xe8], 4, "puts"); // call puts

    a.emit(&[0xf6, 0x45, 0x00, 0x04]); // test byte [ebp], 4 (a command line is given)
    a.rel(&[0x74], 1, "modules"); // jz modules
    a.emit(&[0x8b, 0x75, 0x10]); // mov esi, [ebp+16] (cmdline)
    a.emit(&[0xbf, 0xff, 0xff, 0xff, 0xff]); // mov edi, 0xffffffff
    a.rel(&[0xe8], 4, "puts"); // call puts

    a.label("modules");
    a.emit(&[0xf6, 0x45, 0x00, 0x08]); // test byte [ebp], 8 (modules are given)
    a.rel(&[0x74], 1, "halt"); // jz halt
    a.emit(&[0x83, 0x7d, 0x14, 0x00]); // cmp dword [ebp+20], 0 (mods_count)
    a.rel(&[0x74], 1, "halt"); // je halt
    a.emit(&[0x8b, 0x45, 0x18]); // mov eax, [ebp+24] (mods_addr)
    a.emit(&[0x8b, 0x30]); // mov esi, [eax] (the first module's start)
    a.emit(&[0x8b, 0x78, 0x04]); // mov edi, [eax+4] (its end)
    a.rel(&[0xe8], 4, "puts"); // call puts

    a.label("halt");
    a.emit(&[0xfa]); // cli
    a.emit(&[0xf4]); // hlt
    a.rel(&[0xeb], 1, "halt"); // jmp halt

    // puts: writes the bytes from esi up to a NUL or edi (whichever comes first) to port
    // 0xe9, then a newline.
    a.label("puts");
    a.emit(&[0x39, 0xfe]); // cmp esi, edi
    a.rel(&[0x73], 1, "puts_done"); // jae puts_done
    a.e9_next_byte("puts", "puts_done");
    a.label("puts_done");
    a.emit(&[0xb0, b'\n']); // mov al, '\n'
    a.emit(&[0xe6, 0xe9]); // out 0xe9, al
    a.emit(&[0xc3]); // ret

    a.label("marker");
    a.emit(KERNEL_MARKER.as_bytes());
    a.emit(&[0]);

    let entry = KERNEL_LOAD + MULTIBOOT_HEADER_LEN;
    let code = a.finish(entry)?;
    let load_end = u32::try_from(code.len())
        .ok()
        .and_then(|n| entry.checked_add(n))
        .filter(|end| *end <= KERNEL_LOAD + KERNEL_SPAN - KERNEL_STACK)
        .ok_or_else(|| {
            format!(
                "multiboot kernel: {} bytes of code leave less than {KERNEL_STACK} bytes of \
                 stack in {KERNEL_SPAN} bytes",
                code.len()
            )
        })?;
    let flags = MULTIBOOT_ADDRESSES;
    let checksum = 0u32.wrapping_sub(MULTIBOOT_MAGIC).wrapping_sub(flags);
    let mut image = Vec::with_capacity(MULTIBOOT_HEADER_LEN as usize + code.len());
    for word in [
        MULTIBOOT_MAGIC,
        flags,
        checksum,
        KERNEL_LOAD, // header_addr: the header is the image's first bytes
        KERNEL_LOAD, // load_addr
        load_end,
        KERNEL_LOAD + KERNEL_SPAN, // bss_end_addr
        entry,
    ] {
        image.extend_from_slice(&word.to_le_bytes());
    }
    image.extend_from_slice(&code);
    Ok(image)
}

/// Makes the qdisk guest's qcow2 image `out_dir/data.qcow2` with the host's `qemu-img`
/// ([`IMAGE_TOOLS`]), and returns its path.
pub fn build_qcow2(out_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join("data.qcow2");
    if out.exists() {
        std::fs::remove_file(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    crate::packages::run(
        std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&out)
            .arg(QCOW2_SIZE),
    )
    .context("making the hvm step's qcow2 image")?;
    let head = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    if !head.starts_with(b"QFI\xfb") {
        anyhow::bail!("{}: qemu-img wrote no qcow2 header", out.display());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The step

/// The bridge the HVM guest's vif is on (dom0's init makes it).
const BRIDGE: &str = "xenbr0";

/// The HVM guest's config for `tool`: its vif has the default type (ioemu), so it is
/// both netback's vif and the device model's emulated NIC (rtl8139) on a tap.
fn hvm_cfg(tool: &str) -> String {
    hvm_cfg_named(&hvm_name(tool), "")
}

/// The HVM guest's config under `name`, with `extra` lines.
fn hvm_cfg_named(name: &str, extra: &str) -> String {
    format!(
        "# HVM guest of the rxl e2e rig: SeaBIOS boots a raw disk's boot sector.\n\
         name = \"{name}\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
         disk = [ \"format=raw,vdev=hda,access=rw,target={HVM_DIR}/boot.img\" ]\n\
         vif = [ \"bridge={BRIDGE}\" ]\n\
         boot = \"c\"\nserial = \"pty\"\nvnc = 0\nsdl = 0\n{extra}"
    )
}

/// The device model failures rxl's create must survive cleanly: (case, the program
/// `device_model_override` names, the capture). `missing` does not exist; `exits` exits
/// at once.
const DM_FAILURES: [(&str, &str, &str); 2] = [
    (
        "missing",
        "/nonexistent/xen-qemu-system-i386",
        "rxl-dmfail-missing",
    ),
    ("exits", "/bin/false", "rxl-dmfail-exits"),
];

/// The capture and guest of the device model crash case (rxl only).
const DM_CRASH_CAP: &str = "rxl-dmcrash";
const DM_CRASH_NAME: &str = "hvm-dmcrash";

/// The ACPI power-off capture of `tool` (both tools: the guest is powered off through
/// `TOOL shutdown -F`), and its guest's name.
fn acpi_cap(tool: &str) -> (&'static str, String) {
    let cap = match tool {
        "rxl" => "rxl-acpi",
        _ => "xl-acpi",
    };
    (cap, format!("acpi-{tool}"))
}

/// The guest of a device model failure case.
fn dmfail_name(case: &str) -> String {
    format!("dmfail-{case}")
}

/// The qdisk guest's config for `tool`: the Linux guest with the qcow2 image as xvdb.
fn qdisk_cfg(tool: &str) -> String {
    format!(
        "# Debian's kernel as a PVH guest with a qcow2 disk (served by QEMU, qdisk).\n\
         name = \"{}\"\ntype = \"pvh\"\nmemory = 256\nvcpus = {TIMED_LINUX_VCPUS}\n\
         kernel = \"{LINUX_DIR}/vmlinuz\"\nramdisk = \"{LINUX_DIR}/initrd.img\"\n\
         cmdline = \"console=hvc0 rdinit=/init rxl_devices\"\n\
         on_reboot = \"destroy\"\n\
         disk = [ \"format=qcow2,vdev=xvdb,access=rw,target={HVM_DIR}/data-{tool}.qcow2\" ]\n",
        qdisk_name(tool)
    )
}

/// The boot-path guests' names and tokens, each with `-TOOL` appended ([`of_tool`]): the
/// direct kernel boot guest, the AHCI and VNC guest, the token on the direct kernel boot
/// guest's command line and the one in its module (ramdisk).
const KERNEL_GUEST: &str = "hvmkernel";
const AHCI_GUEST: &str = "hvmahci";
const CMDLINE_TOKEN: &str = "RXL-HVM-CMDLINE";
const MODULE_TOKEN: &str = "RXL-HVM-MODULE";

/// `what` of `tool`: `WHAT-TOOL`.
fn of_tool(what: &str, tool: &str) -> String {
    format!("{what}-{tool}")
}

/// The module (ramdisk) file of the direct kernel boot guest of `tool`: its token, a NUL.
fn module_text(tool: &str) -> Vec<u8> {
    let mut t = of_tool(MODULE_TOKEN, tool).into_bytes();
    t.push(0);
    t
}

/// Where the multiboot kernel lives in dom0.
const KERNEL_PATH: &str = "/e2e/hvm/mbkernel.bin";

/// Where the module of `tool`'s direct kernel boot guest lives in dom0.
fn module_path(tool: &str) -> String {
    format!("{HVM_DIR}/{tool}-mbmodule.txt")
}

/// The direct kernel boot guest's config for `tool`: no disk, no NIC; the device model
/// loads the multiboot kernel, its module and its command line.
fn kernel_cfg(tool: &str) -> String {
    format!(
        "# HVM guest of the rxl e2e rig: the device model boots a multiboot kernel directly.\n\
         name = \"{}\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
         kernel = \"{KERNEL_PATH}\"\nramdisk = \"{}\"\n\
         cmdline = \"rxl_hvm_cmdline={}\"\n\
         serial = \"pty\"\nvnc = 0\nsdl = 0\n",
        of_tool(KERNEL_GUEST, tool),
        module_path(tool),
        of_tool(CMDLINE_TOKEN, tool)
    )
}

/// The AHCI and VNC guest's config for `tool`: the boot sector's disk on the AHCI
/// controller, no NIC, and VNC on 127.0.0.1.
fn ahci_cfg(tool: &str) -> String {
    format!(
        "# HVM guest of the rxl e2e rig: SeaBIOS boots the boot sector from an AHCI disk.\n\
         name = \"{}\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
         disk = [ \"format=raw,vdev=hda,access=rw,target={HVM_DIR}/boot.img\" ]\n\
         hdtype = \"ahci\"\nboot = \"c\"\nserial = \"pty\"\n\
         vnc = 1\nvnclisten = \"127.0.0.1\"\nsdl = 0\n",
        of_tool(AHCI_GUEST, tool)
    )
}

/// Seconds the directly booted Linux HVM guest may take to reach its /init.
const LINUX_HVM_BOOT_S: u32 = 240;

/// The capture of `tool`'s directly booted Linux HVM guest, and the guest's name.
fn linux_cap(tool: &str) -> (&'static str, String) {
    let cap = match tool {
        "rxl" => "rxl-hvmlinux",
        _ => "xl-hvmlinux",
    };
    (cap, format!("hvmlinux-{tool}"))
}

/// The directly booted Linux HVM guest's config for `tool`: Debian's kernel and the rig's
/// initramfs given to the device model (`kernel`, `ramdisk`, `cmdline` of an HVM guest),
/// its console the PV console (hvc0), no disk, no NIC.
fn linux_cfg(tool: &str) -> String {
    format!(
        "# HVM guest of the rxl e2e rig: the device model boots Debian's kernel directly.\n\
         name = \"{}\"\ntype = \"hvm\"\nmemory = 256\nvcpus = 1\n\
         kernel = \"{LINUX_DIR}/vmlinuz\"\nramdisk = \"{LINUX_DIR}/initrd.img\"\n\
         cmdline = \"console=hvc0 rdinit=/init\"\n\
         on_reboot = \"destroy\"\nserial = \"pty\"\nvnc = 0\nsdl = 0\n",
        linux_cap(tool).1
    )
}

/// The capture of `tool`'s directly booted Linux HVM guest (`hvmlinux.sh`).
fn linux_boot_cap(tool: &str) -> CaptureSpec {
    let (cap, name) = linux_cap(tool);
    let mut spec = script_cap(
        cap,
        LINUX_HVM_BOOT_S + 180,
        include_str!("../../scripts/steps/hvm/hvmlinux.sh"),
        &[
            ("TOOL", tool.to_owned()),
            ("NAME", name),
            ("CFG", format!("{HVM_DIR}/{tool}-hvmlinux.cfg")),
            ("LINUX_INIT_LINE", LINUX_INIT_LINE.to_owned()),
            ("BOOT_S", LINUX_HVM_BOOT_S.to_string()),
        ],
    );
    spec.quiet_s = Some(60);
    spec
}

/// Checks one tool's directly booted Linux HVM guest: the device model was given the
/// kernel, the initramfs and the command line, the kernel reached /init, the destroy
/// left nothing. Returns its summary.
fn check_linux_guest(o: &Outcome<'_>, cap: &str, problems: &mut Vec<String>) -> Option<String> {
    let c = succeeded(o, cap, problems)?;
    let before = problems.len();
    for want in [
        format!("-kernel {LINUX_DIR}/vmlinuz "),
        format!("-initrd {LINUX_DIR}/initrd.img "),
        "-append console=hvc0 rdinit=/init".to_owned(),
    ] {
        if !c.lines.iter().any(|l| l.contains(&want)) {
            problems.push(format!("{cap}: no device model command line with {want}"));
        }
    }
    if number(c, "init_ms").is_none() {
        problems.push(format!(
            "{cap}: the kernel did not reach /init in {LINUX_HVM_BOOT_S} s (wait status {}, \
             state {})",
            value(c, "wait_rc").unwrap_or("?"),
            value(c, "state").unwrap_or("?")
        ));
    }
    device_model_problems(c, cap, "xenfv", problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: created in {} ms, Linux booted by the device model reached /init after {} \
             ms, destroyed in {} ms",
            value(c, "create_ms").unwrap_or("?"),
            value(c, "init_ms").unwrap_or("?"),
            value(c, "destroy_ms").unwrap_or("?"),
        )
    })
}

/// The captures of one tool's boot paths: the direct kernel boot guest, then the AHCI
/// and VNC guest (`hvmboot.sh`, MODE `kernel` and `ahci`).
fn boot_caps(tool: &'static str) -> Vec<CaptureSpec> {
    let cases = [
        (
            "kernel",
            of_tool(KERNEL_GUEST, tool),
            ROM_BOOT_LINE,
            KERNEL_MARKER,
            of_tool(MODULE_TOKEN, tool),
            KERNEL_PATH.to_owned(),
        ),
        (
            "ahci",
            of_tool(AHCI_GUEST, tool),
            "",
            MARKER,
            String::new(),
            format!("{HVM_DIR}/boot.img"),
        ),
    ];
    cases
        .into_iter()
        .map(|(mode, name, first, marker, last, img)| {
            let mut cap = script_cap(
                boot_cap_name(tool, mode),
                MARKER_S + 240,
                include_str!("../../scripts/steps/hvm/hvmboot.sh"),
                &[
                    ("TOOL", tool.to_owned()),
                    ("NAME", name),
                    ("CFG", format!("{HVM_DIR}/{tool}-hvm{mode}.cfg")),
                    ("MODE", mode.to_owned()),
                    ("FIRST", first.to_owned()),
                    ("MARKER", marker.to_owned()),
                    ("LAST", last),
                    ("MARKER_S", MARKER_S.to_string()),
                    ("IMG", img),
                ],
            );
            cap.quiet_s = Some(60);
            cap
        })
        .collect()
}

/// The capture of `tool`'s boot path `mode` (`kernel` or `ahci`): `TOOL-hvmMODE`.
fn boot_cap_name(tool: &str, mode: &str) -> &'static str {
    match (tool, mode) {
        ("rxl", "kernel") => "rxl-hvmkernel",
        ("rxl", _) => "rxl-hvmahci",
        (_, "kernel") => "xl-hvmkernel",
        _ => "xl-hvmahci",
    }
}

/// The captures of one tool: the HVM guest, then the qdisk guest.
fn tool_caps(tool: &'static str) -> Vec<CaptureSpec> {
    let (hvm, qdisk) = match tool {
        "rxl" => ("rxl-hvm", "rxl-qdisk"),
        _ => ("xl-hvm", "xl-qdisk"),
    };
    let mut hvm_cap = script_cap(
        hvm,
        MARKER_S + 240,
        include_str!("../../scripts/steps/hvm/hvm.sh"),
        &[
            ("TOOL", tool.to_owned()),
            ("NAME", hvm_name(tool)),
            ("CFG", format!("{HVM_DIR}/{tool}-hvm.cfg")),
            ("MARKER", MARKER.to_owned()),
            ("MARKER_S", MARKER_S.to_string()),
        ],
    );
    hvm_cap.quiet_s = Some(60);
    let mut qdisk_cap = script_cap(
        qdisk,
        LINUX_BOOT_S + 300,
        include_str!("../../scripts/steps/hvm/qdisk.sh"),
        &[
            ("TOOL", tool.to_owned()),
            ("NAME", qdisk_name(tool)),
            ("CFG", format!("{HVM_DIR}/{tool}-qdisk.cfg")),
            ("IMAGE", format!("{HVM_DIR}/data-{tool}.qcow2")),
            ("TOKEN", token(tool)),
            ("LINUX_INIT_LINE", LINUX_INIT_LINE.to_owned()),
            ("BOOT_S", LINUX_BOOT_S.to_string()),
        ],
    );
    qdisk_cap.quiet_s = Some(60);
    vec![hvm_cap, qdisk_cap]
}

/// The step: for each of `tools`, the HVM guest and the qdisk guest. `boot_img` is the
/// raw disk ([`boot_disk`]), `qcow2` the empty qcow2 image ([`build_qcow2`]).
pub fn hvm_step(
    linux: &LinuxFiles,
    boot_img: Vec<u8>,
    qcow2: &Path,
    tools: &[&'static str],
) -> Step {
    let mut files = crate::steps::linux::kernel_files(linux);
    files.push(StepFile::Bytes {
        path: format!("{HVM_DIR}/boot.img"),
        data: boot_img,
    });
    // The multiboot kernel is fixed code: should it fail to assemble, its guests' creates
    // fail for want of the file and the check names the reason.
    let kernel_error = match multiboot_kernel() {
        Ok(data) => {
            files.push(StepFile::Bytes {
                path: KERNEL_PATH.to_owned(),
                data,
            });
            None
        }
        Err(e) => Some(e),
    };
    let mut captures = Vec::new();
    for &tool in tools {
        files.push(StepFile::Text {
            path: format!("{HVM_DIR}/{tool}-hvm.cfg"),
            text: hvm_cfg(tool),
        });
        files.push(StepFile::Text {
            path: format!("{HVM_DIR}/{tool}-hvmkernel.cfg"),
            text: kernel_cfg(tool),
        });
        files.push(StepFile::Bytes {
            path: module_path(tool),
            data: module_text(tool),
        });
        files.push(StepFile::Text {
            path: format!("{HVM_DIR}/{tool}-hvmahci.cfg"),
            text: ahci_cfg(tool),
        });
        files.push(StepFile::Text {
            path: format!("{HVM_DIR}/{tool}-qdisk.cfg"),
            text: qdisk_cfg(tool),
        });
        files.push(StepFile::Host {
            path: format!("{HVM_DIR}/data-{tool}.qcow2"),
            host: qcow2.to_owned(),
        });
        captures.extend(tool_caps(tool));
        captures.extend(boot_caps(tool));
        files.push(StepFile::Text {
            path: format!("{HVM_DIR}/{tool}-hvmlinux.cfg"),
            text: linux_cfg(tool),
        });
        captures.push(linux_boot_cap(tool));
    }
    if tools.contains(&"rxl") {
        for (case, program, cap) in DM_FAILURES {
            let cfg = format!("{HVM_DIR}/dmfail-{case}.cfg");
            files.push(StepFile::Text {
                path: cfg.clone(),
                text: hvm_cfg_named(
                    &dmfail_name(case),
                    &format!("device_model_override = \"{program}\"\n"),
                ),
            });
            captures.push(script_cap(
                cap,
                240,
                include_str!("../../scripts/steps/hvm/dmfail.sh"),
                &[
                    ("NAME", dmfail_name(case)),
                    ("CFG", cfg),
                    ("CASE", case.to_owned()),
                    ("IMG", format!("{HVM_DIR}/boot.img")),
                ],
            ));
        }
    }
    if tools.contains(&"rxl") {
        let cfg = format!("{HVM_DIR}/dmcrash.cfg");
        files.push(StepFile::Text {
            path: cfg.clone(),
            text: hvm_cfg_named(DM_CRASH_NAME, "on_crash = \"destroy\"\n"),
        });
        captures.push(script_cap(
            DM_CRASH_CAP,
            390,
            include_str!("../../scripts/steps/hvm/dmcrash.sh"),
            &[
                ("NAME", DM_CRASH_NAME.to_owned()),
                ("CFG", cfg),
                ("IMG", format!("{HVM_DIR}/boot.img")),
            ],
        ));
    }
    for &tool in tools {
        let (cap, name) = acpi_cap(tool);
        let cfg = format!("{HVM_DIR}/{tool}-acpi.cfg");
        files.push(StepFile::Text {
            path: cfg.clone(),
            text: hvm_cfg_named(&name, "on_poweroff = \"destroy\"\n"),
        });
        let mut spec = script_cap(
            cap,
            MARKER_S + 240,
            include_str!("../../scripts/steps/hvm/acpi.sh"),
            &[
                ("TOOL", tool.to_owned()),
                ("NAME", name),
                ("CFG", cfg),
                ("IMG", format!("{HVM_DIR}/boot.img")),
                ("MARKER", MARKER.to_owned()),
                ("BUTTON", BUTTON.to_owned()),
                ("MARKER_S", MARKER_S.to_string()),
            ],
        );
        spec.quiet_s = Some(60);
        captures.push(spec);
    }
    let check_tools = tools.to_vec();
    Step {
        name: "hvm",
        about: "QEMU in dom0: an HVM guest (hvmloader, SeaBIOS, xenfv device model) boots a \
                boot sector that prints its marker on port 0xe9 and COM1, and a PVH Linux \
                guest writes and reads a qcow2 disk served by a xenpv device model; both \
                destroyed with no QEMU, socket, xenstore node or interface left; the HVM \
                guest's vif is also its emulated NIC, on a tap in xenbr0; rxl's create with \
                a missing or at once exiting device model fails and leaves nothing; without \
                PV drivers rxl shutdown is refused, shutdown -F sends the ACPI power \
                button and the guest powers off, by rxl as by xl; a killed device model is \
                a crash, on_crash destroy leaves nothing; the device model is given a \
                multiboot kernel to boot directly, and SeaBIOS boots the boot sector from an \
                AHCI disk with VNC on 127.0.0.1 answering the RFB banner",
        captures,
        files,
        check: Box::new(move |o| {
            let mut r = check_hvm(o, &check_tools);
            if let Some(e) = &kernel_error {
                let p = format!("the multiboot kernel was not built: {e}");
                match &mut r {
                    Ok(_) => r = Err(vec![p]),
                    Err(problems) => problems.push(p),
                }
            }
            r
        }),
        publish: None,
    }
}

/// The `leftover: ...` lines of a capture.
fn leftovers(c: &Capture) -> Vec<&str> {
    c.lines
        .iter()
        .filter(|l| l.starts_with("leftover: "))
        .map(String::as_str)
        .collect()
}

/// The value of the first `key=value` field in a capture.
fn value<'a>(c: &'a Capture, key: &str) -> Option<&'a str> {
    c.lines.iter().find_map(|l| field(l, key))
}

/// What both guests' captures must show: a device model run with `-machine MACHINE`, a
/// destroy with status 0, and nothing left of the domain after it.
fn device_model_problems(c: &Capture, cap: &str, machine: &str, problems: &mut Vec<String>) {
    let want = format!("-machine {machine}");
    if !c.lines.iter().any(|l| l.contains(&want)) {
        problems.push(format!("{cap}: no device model command line with {want}"));
    }
    if value(c, "destroy_rc") != Some("0") {
        problems.push(format!(
            "{cap}: destroy exited with {:?}",
            value(c, "destroy_rc")
        ));
    }
    problems.extend(leftovers(c).iter().map(|l| format!("{cap}: {l}")));
}

/// The capture `cap`, finished with status 0; otherwise `None` and the reason in
/// `problems`.
fn succeeded<'a>(o: &Outcome<'a>, cap: &str, problems: &mut Vec<String>) -> Option<&'a Capture> {
    o.succeeded(cap).map_err(|e| problems.push(e)).ok()
}

/// The capture `cap`, finished with status 0, and the domid it names; otherwise `None`
/// and the reason in `problems`.
fn guest_capture<'a>(
    o: &Outcome<'a>,
    cap: &str,
    problems: &mut Vec<String>,
) -> Option<(&'a Capture, u32)> {
    let c = succeeded(o, cap, problems)?;
    let Some(domid) = domid_of(c) else {
        problems.push(format!("{cap}: no domid= line: {}", excerpt(&c.lines)));
        return None;
    };
    Some((c, domid))
}

/// Checks one tool's HVM capture; returns its summary.
fn check_hvm_guest(o: &Outcome<'_>, cap: &str, problems: &mut Vec<String>) -> Option<String> {
    let (c, domid) = guest_capture(o, cap, problems)?;
    let before = problems.len();
    console_line(o, cap, domid, MARKER, true, problems);
    if number(c, "serial_marker_lines").unwrap_or(0) == 0 {
        problems.push(format!(
            "{cap}: the marker never came through the guest's serial pty"
        ));
    }
    if number(c, "xl_console_marker_lines").unwrap_or(0) == 0 {
        problems.push(format!(
            "{cap}: `xl console -t serial` showed no marker in 10 s (status {})",
            value(c, "xl_console_rc").unwrap_or("?")
        ));
    }
    if let Some(n) = number(c, "tool_console_marker_lines") {
        if n == 0 {
            problems.push(format!(
                "{cap}: the tool's own `console -t serial` showed no marker in 10 s (status {})",
                value(c, "tool_console_rc").unwrap_or("?")
            ));
        }
    }
    nic_problems(c, cap, domid, problems);
    device_model_problems(c, cap, "xenfv", problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: d{domid} created in {} ms, marker after {} ms (serial {} ms), tap \
             vif{domid}.0-emu in {BRIDGE}, destroyed in {} ms",
            value(c, "create_ms").unwrap_or("?"),
            value(c, "marker_ms").unwrap_or("?"),
            value(c, "serial_ms").unwrap_or("?"),
            value(c, "destroy_ms").unwrap_or("?"),
        )
    })
}

/// Wants a `(dDOMID)` line in Xen's console that is `text` (`whole`) or holds it;
/// otherwise a problem showing what the domain printed.
fn console_line(
    o: &Outcome<'_>,
    cap: &str,
    domid: u32,
    text: &str,
    whole: bool,
    problems: &mut Vec<String>,
) {
    let lines = guest_lines(o.console, domid);
    let found = lines.iter().any(|l| {
        let l = l.trim_end();
        if whole {
            l == text
        } else {
            l.contains(text)
        }
    });
    if !found {
        let (pre, post) = if whole { ("", "") } else { ("...", "...") };
        problems.push(format!(
            "{cap}: no \"(d{domid}) {pre}{text}{post}\" line in Xen's console; d{domid} \
             printed: {}",
            excerpt(&lines)
        ));
    }
}

/// The device model's command line in a capture (the line after `dm_facts`'s heading).
fn dm_command_line(c: &Capture) -> Option<&str> {
    c.lines
        .iter()
        .skip_while(|l| *l != "--- device model command line")
        .nth(1)
        .map(String::as_str)
        .filter(|l| !l.starts_with("--- "))
}

/// Wants each of `args` in the device model's command line of the capture.
fn dm_args_problems(c: &Capture, cap: &str, args: &[String], problems: &mut Vec<String>) {
    let line = dm_command_line(c).unwrap_or("");
    for a in args {
        if !line.contains(a.as_str()) {
            problems.push(format!(
                "{cap}: the device model's command line has no {a:?}: {:?}",
                excerpt(&[line.to_owned()])
            ));
        }
    }
}

/// SeaBIOS's line when it boots an option ROM's boot entry: QEMU's kernel loader.
const ROM_BOOT_LINE: &str = "Booting from ROM";

/// SeaBIOS's boot order entry for QEMU's multiboot loader that reads fw_cfg by DMA.
/// QEMU 7.2 offers it whenever the machine type has fw_cfg DMA, but the Xen machine's
/// fw_cfg (made for the direct kernel boot) has no DMA interface: the loader then waits
/// for a DMA transfer that never ends, and the kernel never runs.
const MULTIBOOT_DMA_ROM: &str = "/rom@genroms/multiboot_dma.bin";

/// What became of a direct kernel boot whose checks passed.
#[derive(Debug, PartialEq)]
enum KernelRun {
    /// The kernel printed its marker, command line and module.
    Ran,
    /// SeaBIOS booted [`MULTIBOOT_DMA_ROM`] and the kernel printed nothing.
    StuckInDmaLoader,
}

/// Checks one tool's direct kernel boot capture: `-kernel`, `-initrd` and `-append` on
/// the device model's command line, SeaBIOS booting the kernel loader's ROM
/// ([`ROM_BOOT_LINE`]), then the kernel's marker, its command line and its module's
/// token on Xen's console, and nothing left after the destroy. When the kernel printed
/// none of its lines and the ROM SeaBIOS booted was [`MULTIBOOT_DMA_ROM`], the device
/// model's own limit, that is the outcome ([`KernelRun::StuckInDmaLoader`]), not a
/// problem. Returns its summary and outcome.
fn check_kernel_guest(
    o: &Outcome<'_>,
    cap: &str,
    tool: &str,
    problems: &mut Vec<String>,
) -> Option<(String, KernelRun)> {
    let (c, domid) = guest_capture(o, cap, problems)?;
    let before = problems.len();
    let cmdline = format!("rxl_hvm_cmdline={}", of_tool(CMDLINE_TOKEN, tool));
    dm_args_problems(
        c,
        cap,
        &[
            format!("-kernel {KERNEL_PATH} "),
            format!("-initrd {} ", module_path(tool)),
            format!("-append {cmdline} "),
        ],
        problems,
    );
    console_line(o, cap, domid, ROM_BOOT_LINE, false, problems);
    let lines = guest_lines(o.console, domid);
    let module = of_tool(MODULE_TOKEN, tool);
    let printed = lines
        .iter()
        .any(|l| l.trim_end() == KERNEL_MARKER || l.contains(&cmdline) || l.contains(&module));
    let run = if !printed && lines.iter().any(|l| l.contains(MULTIBOOT_DMA_ROM)) {
        KernelRun::StuckInDmaLoader
    } else {
        console_line(o, cap, domid, KERNEL_MARKER, true, problems);
        console_line(o, cap, domid, &cmdline, false, problems);
        console_line(o, cap, domid, &module, false, problems);
        KernelRun::Ran
    };
    device_model_problems(c, cap, "xenfv", problems);
    if problems.len() != before {
        return None;
    }
    let created = value(c, "create_ms").unwrap_or("?");
    let destroyed = value(c, "destroy_ms").unwrap_or("?");
    let summary = match run {
        KernelRun::Ran => format!(
            "{cap}: d{domid} created in {created} ms, kernel marker after {} ms, command \
             line and module after {} ms, destroyed in {destroyed} ms",
            value(c, "marker_ms").unwrap_or("?"),
            value(c, "last_ms").unwrap_or("?"),
        ),
        KernelRun::StuckInDmaLoader => format!(
            "{cap}: d{domid} created in {created} ms with -kernel, -initrd and -append, \
             SeaBIOS booted {MULTIBOOT_DMA_ROM} after {} ms and the kernel never ran (the \
             loader waits for fw_cfg DMA, which the Xen machine does not have), destroyed \
             in {destroyed} ms",
            value(c, "first_ms").unwrap_or("?"),
        ),
    };
    Some((summary, run))
}

/// The address the AHCI guest's VNC server must listen on, and nowhere else.
const VNC_LISTEN: &str = "127.0.0.1";

/// The start of the banner an RFB (VNC) server sends first.
const RFB_BANNER: &str = "RFB 003.0";

/// Checks one tool's AHCI and VNC capture: the boot sector's marker on Xen's console (so
/// SeaBIOS booted the AHCI disk), the AHCI controller and disk on the device model's
/// command line, a VNC listener of the device model on [`VNC_LISTEN`] and none on any
/// other address, the RFB banner from it, and nothing left after the destroy (no VNC
/// listener either). Returns its summary.
fn check_ahci_guest(o: &Outcome<'_>, cap: &str, problems: &mut Vec<String>) -> Option<String> {
    let (c, domid) = guest_capture(o, cap, problems)?;
    let before = problems.len();
    console_line(o, cap, domid, MARKER, true, problems);
    dm_args_problems(
        c,
        cap,
        &[
            "-device ahci,id=ahci0 ".to_owned(),
            "-device ide-hd,bus=ahci0.0,".to_owned(),
        ],
        problems,
    );
    // vnc_listener=ADDR:PORT owner=dm|other
    let listeners: Vec<(&str, &str, &str)> = c
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("vnc_listener="))
        .filter_map(|v| {
            let (at, owner) = v.split_once(" owner=")?;
            let (addr, port) = at.rsplit_once(':')?;
            Some((addr, port, owner))
        })
        .collect();
    let ours: Vec<&str> = listeners
        .iter()
        .filter(|(a, _, o)| *a == VNC_LISTEN && *o == "dm")
        .map(|(_, p, _)| *p)
        .collect();
    if ours.is_empty() {
        problems.push(format!(
            "{cap}: the device model listens for VNC on no port of {VNC_LISTEN} (listeners: \
             {listeners:?})"
        ));
    }
    for (addr, port, owner) in &listeners {
        if *addr != VNC_LISTEN {
            problems.push(format!(
                "{cap}: a VNC port listens on {addr}:{port} (owner {owner}), not only on \
                 {VNC_LISTEN}"
            ));
        }
    }
    // Where QEMU listens, published in xenstore as libxl does (console/vnc-listen and
    // vnc-port), so that tools find the guest's display.
    let published = (value(c, "xs_vnc_listen"), value(c, "xs_vnc_port"));
    if ours
        .first()
        .is_none_or(|p| published != (Some(VNC_LISTEN), Some(*p)))
    {
        problems.push(format!(
            "{cap}: xenstore's console/vnc-listen and vnc-port say {published:?}, not where              the device model listens ({VNC_LISTEN}:{})",
            ours.first().unwrap_or(&"?")
        ));
    }
    // (The banner holds a blank: the whole rest of the line.)
    let banner = c.lines.iter().find_map(|l| l.strip_prefix("vnc_banner="));
    if !banner.is_some_and(|b| b.starts_with(RFB_BANNER)) {
        problems.push(format!(
            "{cap}: VNC on {VNC_LISTEN}:{} answered {banner:?}, not {RFB_BANNER:?}... (nc \
             status {})",
            ours.first().unwrap_or(&"?"),
            value(c, "vnc_nc_rc").unwrap_or("?")
        ));
    }
    match number(c, "vnc_listeners_after") {
        Some(0) => {}
        n => problems.push(format!(
            "{cap}: VNC listeners after the destroy: {n:?}, expected 0"
        )),
    }
    device_model_problems(c, cap, "xenfv", problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: d{domid} created in {} ms, marker from the AHCI disk after {} ms, VNC on \
             {VNC_LISTEN}:{} only, {RFB_BANNER}..., destroyed in {} ms",
            value(c, "create_ms").unwrap_or("?"),
            value(c, "marker_ms").unwrap_or("?"),
            ours.first().unwrap_or(&"?"),
            value(c, "destroy_ms").unwrap_or("?"),
        )
    })
}

/// The HVM guest's vif while it ran: netback's `vifD.0` and the emulated NIC's tap
/// `vifD.0-emu` (on the device model's command line) both ports of [`BRIDGE`] and up.
/// (That neither is left after the destroy is among the leftovers.)
fn nic_problems(c: &Capture, cap: &str, domid: u32, problems: &mut Vec<String>) {
    let tap = format!("ifname=vif{domid}.0-emu,");
    if !c
        .lines
        .iter()
        .any(|l| l.contains("-netdev type=tap,") && l.contains(&tap))
    {
        problems.push(format!(
            "{cap}: no device model command line with -netdev type=tap,...{tap}"
        ));
    }
    for (key, dev) in [
        ("vif", format!("vif{domid}.0")),
        ("tap", format!("vif{domid}.0-emu")),
    ] {
        let master = value(c, &format!("{key}_master"));
        if master != Some(BRIDGE) {
            problems.push(format!(
                "{cap}: {dev} is not a port of {BRIDGE} while the guest runs (its master: {})",
                master.unwrap_or("not printed")
            ));
        } else if value(c, &format!("{key}_up")) != Some("1") {
            problems.push(format!("{cap}: {dev} is in {BRIDGE} but not up"));
        }
    }
}

/// Checks a device model failure capture (`program` as `device_model_override`): rxl's
/// create failed with an error naming the device model (the program, its command line
/// and its log), and nothing of the guest is left. Returns its summary.
fn check_dm_failure(
    o: &Outcome<'_>,
    cap: &str,
    program: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let c = succeeded(o, cap, problems)?;
    let before = problems.len();
    match number(c, "create_rc") {
        None => problems.push(format!("{cap}: no create_rc= line: {}", excerpt(&c.lines))),
        Some(0) => problems.push(format!(
            "{cap}: rxl create succeeded with device_model_override = {program}"
        )),
        Some(_) => {}
    }
    let output: Vec<&str> = c
        .lines
        .iter()
        .skip_while(|l| *l != "--- rxl create's output")
        .take_while(|l| *l != "--- output end")
        .map(String::as_str)
        .collect();
    let has = |f: &dyn Fn(&str) -> bool| output.iter().any(|l| f(l));
    if !has(&|l| l.contains("device model")) {
        problems.push(format!(
            "{cap}: the error does not name the device model: {}",
            excerpt(&c.lines)
        ));
    }
    if !has(&|l| l.trim_start().starts_with("command:") && l.contains(program)) {
        problems.push(format!(
            "{cap}: the error does not show the command line ({program} ...)"
        ));
    }
    if !has(&|l| l.trim_start().starts_with("log:") && l.contains("qemu-dm-")) {
        problems.push(format!("{cap}: the error does not name the log"));
    }
    if value(c, "failed_domid").is_none_or(|d| d == "none") {
        problems.push(format!(
            "{cap}: no -xen-domid in the error: the leftovers of the domain were not looked for"
        ));
    }
    problems.extend(leftovers(c).iter().map(|l| format!("{cap}: {l}")));
    if !c.lines.iter().any(|l| l == "--- leftovers end") {
        problems.push(format!("{cap}: the leftovers were not listed to the end"));
    }
    (problems.len() == before).then(|| {
        format!(
            "{cap}: create failed (status {}) in {} ms naming the device model, nothing left",
            value(c, "create_rc").unwrap_or("?"),
            value(c, "create_ms").unwrap_or("?"),
        )
    })
}

/// Checks one tool's qdisk capture; returns its summary.
fn check_qdisk_guest(
    o: &Outcome<'_>,
    cap: &str,
    tool: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let c = succeeded(o, cap, problems)?;
    let before = problems.len();
    let want = token(tool);
    if value(c, "readback") != Some(want.as_str()) {
        problems.push(format!(
            "{cap}: the guest read back {:?} from xvdb, expected {want:?}",
            value(c, "readback")
        ));
    }
    if number(c, "token_in_qcow2").unwrap_or(0) == 0 {
        problems.push(format!("{cap}: the token is not in the qcow2 file"));
    }
    device_model_problems(c, cap, "xenpv", problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: created in {} ms, /init after {} ms, token read back, destroyed in {} ms",
            value(c, "create_ms").unwrap_or("?"),
            value(c, "boot_ms").unwrap_or("?"),
            value(c, "destroy_ms").unwrap_or("?"),
        )
    })
}

/// A `key=value` line of a capture, a test of its value, and what the test wants.
type Rule = (&'static str, fn(u64) -> bool, &'static str);

/// Each of `rules` the capture `cap` breaks, then each thing it found left of its domain
/// (and a list of leftovers cut short), as problems.
fn rule_problems(c: &Capture, cap: &str, rules: &[Rule], problems: &mut Vec<String>) {
    for (key, ok, what) in rules {
        match number(c, key) {
            Some(v) if ok(v) => {}
            v => problems.push(format!("{cap}: {key} is {v:?}, expected {what}")),
        }
    }
    problems.extend(leftovers(c).iter().map(|l| format!("{cap}: {l}")));
    if !c.lines.iter().any(|l| l == "--- leftovers end") {
        problems.push(format!("{cap}: the leftovers were not listed to the end"));
    }
}

/// Checks the device model crash capture: the power requests of a guest without PV
/// drivers (shutdown refused naming -F, the ACPI power button sent, by rxl as by xl), then
/// the killed device model taken for a crash and on_crash = "destroy" leaving nothing.
fn check_dm_crash(o: &Outcome<'_>, cap: &str, problems: &mut Vec<String>) -> Option<String> {
    let c = succeeded(o, cap, problems)?;
    let before = problems.len();
    let rules: [Rule; 7] = [
        ("shutdown_rc", |v| v != 0, "a refusal (no PV control)"),
        ("shutdown_hint", |v| v > 0, "the hint to use -F"),
        ("xl_shutdown_rc", |v| v != 0, "xl's refusal too"),
        ("trigger_rc", |v| v == 0, "0 (the sleep button sent)"),
        ("xl_trigger_rc", |v| v == 0, "0 (the sleep button sent)"),
        ("crash_logged", |v| v >= 1, "the monitor's crash line"),
        ("gone_ms", |_| true, "the domain destroyed by on_crash"),
    ];
    rule_problems(c, cap, &rules, problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: shutdown refused naming -F (xl too), sleep button sent; killed device \
             model taken for a crash, domain destroyed in {} ms, nothing left",
            value(c, "gone_ms").unwrap_or("?")
        )
    })
}

/// Checks one tool's ACPI power-off capture: `TOOL shutdown -F` succeeded, the boot
/// sector saw the power button, the domain powered off and went (on_poweroff =
/// "destroy"), and nothing of it is left. Returns its summary.
fn check_acpi(o: &Outcome<'_>, cap: &str, problems: &mut Vec<String>) -> Option<String> {
    let c = succeeded(o, cap, problems)?;
    let before = problems.len();
    let rules: [Rule; 4] = [
        ("shutdown_rc", |v| v == 0, "0 (the power button sent)"),
        (
            "marker_s",
            |_| true,
            "the boot sector running before the button",
        ),
        (
            "button_lines",
            |v| v >= 1,
            "the boot sector's line for the button",
        ),
        ("gone_ms", |_| true, "the domain powered off and destroyed"),
    ];
    rule_problems(c, cap, &rules, problems);
    (problems.len() == before).then(|| {
        format!(
            "{cap}: shutdown -F sent the ACPI power button, the guest powered off, gone {} \
             ms later, nothing left",
            value(c, "gone_ms").unwrap_or("?")
        )
    })
}

fn check_hvm(o: &Outcome<'_>, tools: &[&str]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    let mut kernel_runs = Vec::new();
    for &tool in tools {
        summary.extend(check_hvm_guest(o, &format!("{tool}-hvm"), &mut problems));
        summary.extend(check_qdisk_guest(
            o,
            &format!("{tool}-qdisk"),
            tool,
            &mut problems,
        ));
        if let Some((s, run)) =
            check_kernel_guest(o, boot_cap_name(tool, "kernel"), tool, &mut problems)
        {
            summary.push(s);
            kernel_runs.push((tool, run));
        }
        summary.extend(check_ahci_guest(
            o,
            boot_cap_name(tool, "ahci"),
            &mut problems,
        ));
    }
    // The device model's limit excuses rxl only when xl's kernel did not run either.
    if kernel_runs.contains(&("xl", KernelRun::Ran))
        && kernel_runs.contains(&("rxl", KernelRun::StuckInDmaLoader))
    {
        problems.push(format!(
            "{}: the kernel never ran under rxl, while it ran under xl",
            boot_cap_name("rxl", "kernel")
        ));
    }
    if tools.contains(&"rxl") {
        for (_, program, cap) in DM_FAILURES {
            summary.extend(check_dm_failure(o, cap, program, &mut problems));
        }
        summary.extend(check_dm_crash(o, DM_CRASH_CAP, &mut problems));
    }
    for &tool in tools {
        summary.extend(check_acpi(o, acpi_cap(tool).0, &mut problems));
        summary.extend(check_linux_guest(o, linux_cap(tool).0, &mut problems));
    }
    if problems.is_empty() {
        Ok(summary.join("; "))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::Report;

    #[test]
    fn the_boot_sector_is_one_signed_sector_holding_the_marker() {
        let s = boot_sector().unwrap();
        assert_eq!(s.len(), 512);
        assert_eq!(&s[510..], &[0x55, 0xaa]);
        let m = format!("{MARKER}\n\0");
        let at = s
            .windows(m.len())
            .position(|w| w == m.as_bytes())
            .expect("marker in the sector");
        // `mov si, msg` (0xbe) carries the marker's load address, twice.
        let addr = (usize::from(BOOT_ORIGIN) + at) as u16;
        let mov: Vec<u8> = [&[0xbe][..], &addr.to_le_bytes()].concat();
        let n = s.windows(3).filter(|w| *w == mov.as_slice()).count();
        assert_eq!(n, 2, "mov si, msg at {addr:#x}");
        // It starts with cli and sets up ds before anything else.
        assert_eq!(&s[..5], &[0xfa, 0x31, 0xc0, 0x8e, 0xd8]);
        // Port 0xe9 and COM1's registers are written or read.
        assert!(s.windows(2).any(|w| w == [0xe6, 0xe9]));
        assert!(s.windows(3).any(|w| w == [0xba, 0xfd, 0x03]));
        assert!(s.windows(3).any(|w| w == [0xba, 0xf8, 0x03]));
        assert!(s.windows(2).any(|w| w == [0xa8, 0x20]));
        // The power button: PM1a_STS read (in ax, dx), its bit tested, PM1a_CNT written
        // with SLP_EN (out dx, ax), and the line printed first.
        let has = |b: &[u8]| s.windows(b.len()).any(|w| w == b);
        assert!(has(&[0xba, 0x00, 0xb0, 0xed, 0xa9, 0x00, 0x01]));
        assert!(has(&[0xb8, 0x00, 0x20, 0xba, 0x04, 0xb0, 0xef]));
        assert!(has(format!("{BUTTON}\n\0").as_bytes()));
    }

    #[test]
    fn the_boot_sectors_jumps_land_on_their_labels() {
        let s = boot_sector().unwrap();
        // `loop tick` goes back to `sti` (0xfb), two bytes before it with `hlt` between.
        let lp = s.iter().position(|&b| b == 0xe2).unwrap();
        let to = (lp as isize + 2 + (s[lp + 1] as i8) as isize) as usize;
        assert_eq!(&s[to..to + 2], &[0xfb, 0xf4]);
        // Both calls land on `lodsb`.
        for (i, _) in s.iter().enumerate().filter(|(_, &b)| b == 0xe8) {
            let d = i16::from_le_bytes([s[i + 1], s[i + 2]]);
            let to = (i as isize + 3 + d as isize) as usize;
            assert_eq!(s[to], 0xac, "call at {i}");
        }
    }

    #[test]
    fn a_jump_out_of_reach_is_an_error_not_a_wrong_byte() {
        let mut a = Asm::default();
        a.rel(&[0xeb], 1, "far");
        a.emit(&[0x90; 200]);
        a.label("far");
        let e = a.finish(u32::from(BOOT_ORIGIN)).unwrap_err();
        assert!(e.contains("too far"), "{e}");
        let mut a = Asm::default();
        a.rel(&[0xeb], 1, "nowhere");
        assert!(a.finish(0).unwrap_err().contains("no label nowhere"));
    }

    #[test]
    fn the_disk_is_a_mebibyte_starting_with_the_boot_sector() {
        let d = boot_disk().unwrap();
        assert_eq!(d.len(), DISK_BYTES);
        assert_eq!(&d[..512], &boot_sector().unwrap());
        assert!(d[512..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_configs_say_what_the_step_needs() {
        let h = hvm_cfg("xl");
        for want in [
            "type = \"hvm\"",
            "memory = 32",
            "format=raw,vdev=hda,access=rw,target=/e2e/hvm/boot.img",
            "serial = \"pty\"",
            "vnc = 0",
            "sdl = 0",
            "boot = \"c\"",
        ] {
            assert!(h.contains(want), "{want} in {h}");
        }
        assert!(h.contains("vif = [ \"bridge=xenbr0\" ]"), "{h}");
        assert!(
            !h.contains("type="),
            "the vif keeps HVM's default type: {h}"
        );
        let f = hvm_cfg_named("dmfail-exits", "device_model_override = \"/bin/false\"\n");
        assert!(f.contains("name = \"dmfail-exits\""), "{f}");
        assert!(f.contains("vif = [ \"bridge=xenbr0\" ]"), "{f}");
        assert!(
            f.ends_with("device_model_override = \"/bin/false\"\n"),
            "{f}"
        );
        let q = qdisk_cfg("rxl");
        assert!(q.contains("format=qcow2,vdev=xvdb,access=rw,target=/e2e/hvm/data-rxl.qcow2"));
        assert!(q.contains("rxl_devices"), "blkfront is loaded: {q}");
        assert!(q.contains("name = \"qdisk-rxl\""));
    }

    #[test]
    fn tools_default_to_xl_and_take_rxl() {
        assert_eq!(select_tools(DEFAULT_TOOLS).unwrap(), vec!["xl", "rxl"]);
        assert_eq!(select_tools("rxl, xl").unwrap(), vec!["xl", "rxl"]);
        assert!(select_tools("xm").unwrap_err().contains("xl, rxl"));
    }

    /// A report of the captures `step_lines`, and of xl's ACPI power-off and Linux direct
    /// boot captures (good) unless they have them.
    fn report(step_lines: &[(&str, &[&str], i32)]) -> Report {
        let mut text = String::from("@@RXL-READY\n");
        let mut all = step_lines.to_vec();
        for (cap, good) in [("xl-acpi", GOOD_ACPI), ("xl-hvmlinux", GOOD_LINUX)] {
            if !all.iter().any(|(n, _, _)| *n == cap) {
                all.push((cap, good, 0));
            }
        }
        for (name, lines, rc) in &all {
            text.push_str(&format!("@@RXL-BEGIN hvm/{name}\n"));
            for l in *lines {
                text.push_str(l);
                text.push('\n');
            }
            text.push_str(&format!("@@RXL-END hvm/{name} rc={rc}\n"));
        }
        text.push_str("@@RXL-DONE\n");
        crate::markers::parse(&text)
    }

    const GOOD_HVM: &[&str] = &[
        "create_ms=4000",
        "domid=3",
        "marker_ms=9000",
        "serial_marker_lines=2",
        "serial_ms=9100",
        "xl_console_rc=0",
        "xl_console_marker_lines=6",
        "vif_master=xenbr0",
        "vif_up=1",
        "tap_master=xenbr0",
        "tap_up=1",
        "--- device model command line",
        "/usr/libexec/xen-qemu-system-i386 -xen-domid 3 -device rtl8139,id=nic0,netdev=net0,mac=00:16:3e:00:00:01 -netdev type=tap,id=net0,ifname=vif3.0-emu,br=xenbr0,script=no,downscript=no -machine xenfv,suppress-vmdesc=on",
        "destroy_rc=0",
        "destroy_ms=2000",
        "--- leftovers end",
    ];

    const GOOD_LINUX: &[&str] = &[
        "create_rc=0",
        "create_ms=5000",
        "domid=7",
        "wait_rc=0",
        "init_ms=61000",
        "--- device model command line",
        "/usr/libexec/xen-qemu-system-i386 -xen-domid 7 -kernel /e2e/linux/vmlinuz -initrd /e2e/linux/initrd.img -append console=hvc0 rdinit=/init -machine xenfv,suppress-vmdesc=on",
        "destroy_rc=0",
        "destroy_ms=900",
        "--- leftovers",
        "--- leftovers end",
    ];

    #[test]
    fn linux_booted_by_the_device_model_must_reach_init() {
        let judge = |lines: &[&str]| {
            let r = report(&[("xl-hvmlinux", lines, 0)]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console: "",
            };
            let mut problems = Vec::new();
            match check_linux_guest(&o, "xl-hvmlinux", &mut problems) {
                Some(s) if problems.is_empty() => Ok(s),
                _ => Err(problems),
            }
        };
        let s = judge(GOOD_LINUX).unwrap();
        assert!(s.contains("reached /init after 61000 ms"), "{s}");
        let mut none = GOOD_LINUX.to_vec();
        none[4] = "init_ms=none";
        none[3] = "wait_rc=2";
        let p = judge(&none).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("did not reach /init in 240 s (wait status 2")),
            "{p:?}"
        );
        let mut no_kernel = GOOD_LINUX.to_vec();
        no_kernel[6] = "/usr/libexec/xen-qemu-system-i386 -xen-domid 7 -machine xenfv";
        let p = judge(&no_kernel).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("with -kernel /e2e/linux/vmlinuz")),
            "{p:?}"
        );
        let c = linux_cfg("rxl");
        for want in [
            "name = \"hvmlinux-rxl\"",
            "type = \"hvm\"",
            "kernel = \"/e2e/linux/vmlinuz\"",
            "ramdisk = \"/e2e/linux/initrd.img\"",
        ] {
            assert!(c.contains(want), "{want}: {c}");
        }
    }

    const GOOD_ACPI: &[&str] = &[
        "create_rc=0",
        "domid=5",
        "marker_s=12",
        "shutdown_rc=0",
        "gone_ms=3100",
        "button_lines=1",
        "--- leftovers",
        "--- leftovers end",
    ];

    #[test]
    fn the_acpi_power_off_must_be_seen_and_leave_nothing() {
        let judge = |acpi: &[&str]| {
            let r = report(&[("xl-acpi", acpi, 0)]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console: "",
            };
            let mut problems = Vec::new();
            match check_acpi(&o, "xl-acpi", &mut problems) {
                Some(s) if problems.is_empty() => Ok(s),
                _ => Err(problems),
            }
        };
        let s = judge(GOOD_ACPI).unwrap();
        assert!(
            s.contains("xl-acpi: shutdown -F sent the ACPI power button"),
            "{s}"
        );
        assert!(s.contains("gone 3100 ms later"), "{s}");
        // The button never seen, the domain never gone, a QEMU left, a failed shutdown.
        let without = |key: &str| -> Vec<&str> {
            GOOD_ACPI
                .iter()
                .copied()
                .filter(|l| !l.starts_with(key))
                .collect()
        };
        let p = judge(&without("button_lines=")).unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("button_lines is None")),
            "{p:?}"
        );
        let mut gone = without("gone_ms=");
        gone.push("gone_ms=none");
        let p = judge(&gone).unwrap_err();
        assert!(p.iter().any(|p| p.contains("gone_ms is None")), "{p:?}");
        let mut left = GOOD_ACPI.to_vec();
        left.insert(7, "leftover: qemu 300 -xen-domid 5");
        let p = judge(&left).unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("xl-acpi: leftover: qemu 300")),
            "{p:?}"
        );
        let mut failed = without("shutdown_rc=");
        failed.push("shutdown_rc=1");
        let p = judge(&failed).unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("shutdown_rc is Some(1)")),
            "{p:?}"
        );
    }

    fn good_qdisk(tool: &str) -> Vec<String> {
        vec![
            "create_ms=9000".into(),
            "domid=4".into(),
            "boot_ms=20000".into(),
            "/usr/libexec/xen-qemu-system-i386 -xen-domid 4 -machine xenpv -m 256".into(),
            format!("readback={}", token(tool)),
            "destroy_rc=0".into(),
            "token_in_qcow2=1".into(),
        ]
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    /// What Xen's console shows of good boot-path guests of `tool` (d5: the multiboot
    /// kernel, d6: the AHCI disk's boot sector).
    fn boot_console(tool: &str) -> String {
        format!(
            "(d5) 1: /rom@genroms/multiboot.bin\n(d5) Booting from ROM...\n\
             (d5) {KERNEL_MARKER}\n(d5) /e2e/hvm/mbkernel.bin rxl_hvm_cmdline=RXL-HVM-CMDLINE-{tool}\n\
             (d5) RXL-HVM-MODULE-{tool}\n(XEN) d6v0 something\n(d6) {MARKER}\n"
        )
    }

    fn good_kernel(tool: &str) -> Vec<String> {
        vec![
            "mode=kernel".into(),
            "create_rc=0".into(),
            "create_ms=3000".into(),
            "domid=5".into(),
            "marker_ms=70000".into(),
            "last_ms=70100".into(),
            "dm_pid=500".into(),
            "--- device model command line".into(),
            format!(
                "/usr/libexec/xen-qemu-system-i386 -xen-domid 5 -no-shutdown -name \
                 hvmkernel-{tool} -vnc none -display none -kernel /e2e/hvm/mbkernel.bin \
                 -initrd /e2e/hvm/{tool}-mbmodule.txt -append rxl_hvm_cmdline=RXL-HVM-CMDLINE-{tool} \
                 -serial pty -machine xenfv,suppress-vmdesc=on -m 24 "
            ),
            "--- device model environment (XEN*)".into(),
            "destroy_rc=0".into(),
            "destroy_ms=1500".into(),
            "--- leftovers".into(),
            "--- leftovers end".into(),
        ]
    }

    fn good_ahci() -> Vec<String> {
        [
            "mode=ahci",
            "create_rc=0",
            "create_ms=3100",
            "domid=6",
            "marker_ms=80000",
            "xs_vnc_listen=127.0.0.1",
            "xs_vnc_port=5900",
            "--- vnc listeners (ports 5900-5999)",
            "vnc_listener=127.0.0.1:5900 owner=dm",
            "vnc_nc_rc=0",
            "vnc_banner=RFB 003.008",
            "dm_pid=600",
            "--- device model command line",
            "/usr/libexec/xen-qemu-system-i386 -xen-domid 6 -vnc 127.0.0.1:0,to=99 -machine \
             xenfv,suppress-vmdesc=on -m 24 -device ahci,id=ahci0 -drive \
             file=/e2e/hvm/boot.img,if=none,id=ahcidisk-0,format=raw,cache=writeback -device \
             ide-hd,bus=ahci0.0,unit=0,drive=ahcidisk-0 ",
            "destroy_rc=0",
            "destroy_ms=1600",
            "--- leftovers",
            "--- leftovers end",
            "--- vnc listeners after the destroy",
            "vnc_listeners_after=0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// What `check` says of a report holding only the capture `cap` with `lines`, beside
    /// Xen's `console`: its summary and its problems.
    fn judge_one(
        cap: &str,
        lines: &[String],
        console: &str,
        check: impl Fn(&Outcome<'_>, &mut Vec<String>) -> Option<String>,
    ) -> (Option<String>, Vec<String>) {
        let r = report(&[(cap, &strs(lines), 0)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console,
        };
        let mut problems = Vec::new();
        let s = check(&o, &mut problems);
        (s, problems)
    }

    #[test]
    fn a_direct_kernel_boot_must_print_its_command_line_and_module() {
        let judge = |lines: &[String], console: &str| {
            judge_one("rxl-hvmkernel", lines, console, |o, p| {
                check_kernel_guest(o, "rxl-hvmkernel", "rxl", p).map(|(s, run)| {
                    assert_eq!(run, KernelRun::Ran, "{s}");
                    s
                })
            })
        };
        let good = boot_console("rxl");
        let (s, p) = judge(&good_kernel("rxl"), &good);
        assert!(p.is_empty(), "{p:?}");
        let s = s.unwrap();
        assert!(s.contains("d5 created in 3000 ms"), "{s}");
        assert!(s.contains("module after 70100 ms"), "{s}");
        // xl's tokens are not rxl's; each missing console line is named.
        let (_, p) = judge(&good_kernel("rxl"), &boot_console("xl"));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("rxl_hvm_cmdline=RXL-HVM-CMDLINE-rxl"),
            "{p:?}"
        );
        assert!(p[1].contains("RXL-HVM-MODULE-rxl"), "{p:?}");
        let (_, p) = judge(&good_kernel("rxl"), &good.replace(KERNEL_MARKER, "RXL"));
        assert!(
            p.iter()
                .any(|p| p.contains("no \"(d5) RXL-HVM-KERNEL-OK\"")),
            "{p:?}"
        );
        // Each of -kernel, -initrd and -append must be on the device model's command line.
        for gone in ["-kernel ", "-initrd ", "-append "] {
            let l: Vec<String> = good_kernel("rxl")
                .into_iter()
                .map(|x| x.replace(gone, "-foo "))
                .collect();
            let (s, p) = judge(&l, &good);
            assert!(s.is_none());
            assert!(p.iter().any(|p| p.contains(gone.trim())), "{gone}: {p:?}");
        }
        // A leftover fails it.
        let mut l = good_kernel("rxl");
        l.insert(l.len() - 1, "leftover: qemu 500 x -xen-domid 5 ".into());
        assert!(judge(&l, &good)
            .1
            .iter()
            .any(|p| p.contains("leftover: qemu 500")));
    }

    /// Xen's console when SeaBIOS booted QEMU's DMA multiboot loader for d5 and the
    /// kernel printed nothing.
    const STUCK_CONSOLE: &str = "(d5) boot order:\n(d5) 1: /rom@genroms/multiboot_dma.bin\n\
                                 (d5) Booting from ROM...\n(d5) Booting from ca00:003c\n";

    #[test]
    fn a_kernel_stuck_in_the_dma_loader_is_an_outcome_only_when_nothing_ran() {
        let judge = |console: &str| {
            let r = report(&[("xl-hvmkernel", &strs(&good_kernel("xl")), 0)]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console,
            };
            let mut problems = Vec::new();
            let s = check_kernel_guest(&o, "xl-hvmkernel", "xl", &mut problems);
            (s, problems)
        };
        let (s, p) = judge(STUCK_CONSOLE);
        assert!(p.is_empty(), "{p:?}");
        let (s, run) = s.unwrap();
        assert_eq!(run, KernelRun::StuckInDmaLoader);
        assert!(s.contains("the kernel never ran"), "{s}");
        // A kernel that printed part of its lines is judged line by line.
        let (s, p) = judge(&format!("{STUCK_CONSOLE}(d5) {KERNEL_MARKER}\n"));
        assert!(s.is_none());
        assert_eq!(p.len(), 2, "{p:?}");
        // Without SeaBIOS booting the loader's ROM, nothing is excused.
        let (s, p) = judge("(d5) 1: /rom@genroms/multiboot_dma.bin\n");
        assert!(s.is_none());
        assert!(p.iter().any(|p| p.contains("Booting from ROM")), "{p:?}");
        // Another ROM (the one that reads fw_cfg by port) excuses nothing either.
        let other = STUCK_CONSOLE.replace("multiboot_dma.bin", "multiboot.bin");
        let (s, p) = judge(&other);
        assert!(s.is_none());
        assert_eq!(p.len(), 3, "{p:?}");

        // rxl is excused only when xl's kernel did not run either.
        let both = |xl_console: &str| {
            let (xk, rk) = (good_kernel("xl"), good_kernel("rxl"));
            let mut rk = rk;
            for l in &mut rk {
                *l = l.replace("-xen-domid 5", "-xen-domid 7");
            }
            rk[3] = "domid=7".into();
            let r = report(&[
                ("xl-hvmkernel", &strs(&xk), 0),
                ("rxl-hvmkernel", &strs(&rk), 0),
            ]);
            let console = format!("{xl_console}{}", STUCK_CONSOLE.replace("(d5)", "(d7)"));
            let o = Outcome {
                step: "hvm",
                report: &r,
                console: &console,
            };
            check_hvm(&o, &["xl", "rxl"]).unwrap_err()
        };
        let want = "rxl-hvmkernel: the kernel never ran under rxl, while it ran under xl";
        let p = both(&boot_console("xl"));
        assert!(p.iter().any(|p| p == want), "{p:?}");
        let p = both(STUCK_CONSOLE);
        assert!(!p.iter().any(|p| p.contains("hvmkernel")), "{p:?}");
    }

    #[test]
    fn the_ahci_guest_must_boot_and_serve_vnc_on_loopback_only() {
        let judge = |lines: &[String], console: &str| {
            judge_one("xl-hvmahci", lines, console, |o, p| {
                check_ahci_guest(o, "xl-hvmahci", p)
            })
        };
        let console = boot_console("xl");
        let (s, p) = judge(&good_ahci(), &console);
        assert!(p.is_empty(), "{p:?}");
        assert!(s.unwrap().contains("VNC on 127.0.0.1:5900 only"));
        let swap = |from: &str, to: &str| -> Vec<String> {
            good_ahci()
                .into_iter()
                .map(|x| if x == from { to.to_owned() } else { x })
                .collect()
        };
        for (from, to, want) in [
            (
                "vnc_listener=127.0.0.1:5900 owner=dm",
                "vnc_listener=0.0.0.0:5900 owner=dm",
                "listens on 0.0.0.0:5900",
            ),
            (
                "vnc_listener=127.0.0.1:5900 owner=dm",
                "vnc_listener=127.0.0.1:5900 owner=other",
                "listens for VNC on no port",
            ),
            (
                "vnc_banner=RFB 003.008",
                "vnc_banner=",
                "answered Some(\"\")",
            ),
            (
                "xs_vnc_port=5900",
                "xs_vnc_port=",
                "console/vnc-listen and vnc-port say (Some(\"127.0.0.1\"), Some(\"\"))",
            ),
            (
                "vnc_listeners_after=0",
                "vnc_listeners_after=1",
                "after the destroy",
            ),
            (
                "--- leftovers end",
                "leftover: socket /var/run/xen/qmp-libxl-6",
                "leftover: socket",
            ),
        ] {
            let (s, p) = judge(&swap(from, to), &console);
            assert!(s.is_none(), "{to}");
            assert!(p.iter().any(|p| p.contains(want)), "{to}: {p:?}");
        }
        // A second listener on :: is refused even beside the right one.
        let mut l = good_ahci();
        l.insert(8, "vnc_listener=:::5901 owner=dm".into());
        let (_, p) = judge(&l, &console);
        assert!(p.iter().any(|p| p.contains("listens on :::5901")), "{p:?}");
        // No AHCI controller on the command line, no marker from the disk.
        let l: Vec<String> = good_ahci()
            .into_iter()
            .map(|x| x.replace("-device ahci,id=ahci0 ", ""))
            .collect();
        let (_, p) = judge(&l, &console);
        assert!(
            p.iter().any(|p| p.contains("-device ahci,id=ahci0")),
            "{p:?}"
        );
        let (_, p) = judge(&good_ahci(), &console.replace("(d6)", "(d7)"));
        assert!(
            p.iter().any(|p| p.contains("no \"(d6) RXL-HVM-BOOT-OK\"")),
            "{p:?}"
        );
    }

    #[test]
    fn the_multiboot_kernel_has_a_valid_header_and_its_code() {
        let k = multiboot_kernel().unwrap();
        let word = |i: usize| u32::from_le_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]]);
        // The header: magic, flags (only the address fields), a checksum summing to 0.
        assert_eq!(word(0), 0x1bad_b002);
        assert_eq!(word(4), 0x0001_0000);
        assert_eq!(word(0).wrapping_add(word(4)).wrapping_add(word(8)), 0);
        // header_addr, load_addr: the image's first byte at 1 MiB; load_end_addr: its
        // last; bss_end_addr: 8 KiB on; entry_addr: right after the header.
        assert_eq!(word(12), 0x10_0000);
        assert_eq!(word(16), 0x10_0000);
        assert_eq!(word(20), 0x10_0000 + k.len() as u32);
        assert_eq!(word(24), 0x10_2000);
        assert_eq!(word(28), 0x10_0020);
        assert!(
            k.len() <= 0x1000,
            "{} bytes leave the stack its page",
            k.len()
        );
        // The entry: cli, cld, mov esp, 0x102000 (the top of the bss), mov ebp, ebx.
        assert_eq!(
            &k[32..41],
            &[0xfa, 0xfc, 0xbc, 0x00, 0x20, 0x10, 0x00, 0x89, 0xdd]
        );
        // `mov esi, marker` (0xbe) carries the marker's load address.
        let m = format!("{KERNEL_MARKER}\0");
        let at = k
            .windows(m.len())
            .position(|w| w == m.as_bytes())
            .expect("marker in the image");
        assert_eq!(&k[41..42], &[0xbe]);
        assert_eq!(word(42) as usize, 0x10_0000 + at);
        // Three calls, each landing on puts (`cmp esi, edi`).
        let calls: Vec<usize> = (32..k.len() - 5).filter(|&i| k[i] == 0xe8).collect();
        assert_eq!(calls.len(), 3, "{calls:?}");
        for i in calls {
            let d = i32::from_le_bytes([k[i + 1], k[i + 2], k[i + 3], k[i + 4]]);
            let to = (i as i64 + 5 + i64::from(d)) as usize;
            assert_eq!(&k[to..to + 2], &[0x39, 0xfe], "call at {i}");
        }
        // The multiboot information's fields read: flags, cmdline (16), mods_count (20),
        // mods_addr (24); port 0xe9 written; the halt loop.
        for code in [
            &[0xf6, 0x45, 0x00, 0x04][..],
            &[0xf6, 0x45, 0x00, 0x08],
            &[0x8b, 0x75, 0x10],
            &[0x83, 0x7d, 0x14, 0x00],
            &[0x8b, 0x45, 0x18],
            &[0xe6, 0xe9],
            &[0xfa, 0xf4, 0xeb, 0xfc],
        ] {
            assert!(k.windows(code.len()).any(|w| w == code), "{code:x?}");
        }
    }

    #[test]
    fn the_boot_path_configs_say_what_the_guests_need() {
        let k = kernel_cfg("xl");
        for want in [
            "name = \"hvmkernel-xl\"",
            "type = \"hvm\"",
            "memory = 32",
            "kernel = \"/e2e/hvm/mbkernel.bin\"",
            "ramdisk = \"/e2e/hvm/xl-mbmodule.txt\"",
            "cmdline = \"rxl_hvm_cmdline=RXL-HVM-CMDLINE-xl\"",
            "serial = \"pty\"",
            "vnc = 0",
        ] {
            assert!(k.contains(want), "{want} in {k}");
        }
        assert!(!k.contains("\ndisk =") && !k.contains("\nvif ="), "{k}");
        let a = ahci_cfg("rxl");
        for want in [
            "name = \"hvmahci-rxl\"",
            "memory = 32",
            "target=/e2e/hvm/boot.img",
            "hdtype = \"ahci\"",
            "vnc = 1",
            "vnclisten = \"127.0.0.1\"",
        ] {
            assert!(a.contains(want), "{want} in {a}");
        }
        assert_eq!(module_text("rxl"), b"RXL-HVM-MODULE-rxl\0");
        let caps = boot_caps("rxl");
        let names: Vec<&str> = caps.iter().map(|c| c.name).collect();
        assert_eq!(names, ["rxl-hvmkernel", "rxl-hvmahci"]);
    }

    #[test]
    fn a_clean_run_passes_and_each_failure_is_named() {
        let q = good_qdisk("xl");
        let q: Vec<&str> = q.iter().map(String::as_str).collect();
        let console = format!("(XEN) hvm.c\n(d3) RXL-HVM-BOOT-OK\n{}", boot_console("xl"));
        let console = console.as_str();
        let (k, a) = (good_kernel("xl"), good_ahci());
        let (k, a) = (strs(&k), strs(&a));
        let r = report(&[
            ("xl-hvm", GOOD_HVM, 0),
            ("xl-qdisk", &q, 0),
            ("xl-hvmkernel", &k, 0),
            ("xl-hvmahci", &a, 0),
        ]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console,
        };
        let s = check_hvm(&o, &["xl"]).unwrap();
        assert!(s.contains("marker after 9000 ms"), "{s}");

        // No marker on Xen's console, a QEMU left, a wrong token.
        let mut hvm: Vec<&str> = GOOD_HVM.to_vec();
        hvm.retain(|l| !l.starts_with("xl_console_marker_lines="));
        hvm.push("leftover: device model pid 212 (xen-qemu-system-i386 -xen-domid 3)");
        let mut q = good_qdisk("xl");
        q[4] = "readback=".into();
        let q: Vec<&str> = q.iter().map(String::as_str).collect();
        let r = report(&[("xl-hvm", &hvm, 0), ("xl-qdisk", &q, 0)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console: "(d2) RXL-HVM-BOOT-OK\n",
        };
        let p = check_hvm(&o, &["xl"]).unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("no \"(d3) RXL-HVM-BOOT-OK\"")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.contains("leftover: device model pid 212")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("read back Some(\"\")")),
            "{p:?}"
        );

        // rxl's captures are judged when rxl is selected.
        let r = report(&[("xl-hvm", GOOD_HVM, 0), ("xl-qdisk", &q, 0)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console,
        };
        let p = check_hvm(&o, &["xl", "rxl"]).unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("hvm/rxl-hvm never ran")),
            "{p:?}"
        );

        // A tool's own serial console reader must show the marker when it ran.
        let mut hvm: Vec<&str> = GOOD_HVM.to_vec();
        hvm.push("tool_console_rc=124");
        hvm.push("tool_console_marker_lines=0");
        let q = good_qdisk("xl");
        let q: Vec<&str> = q.iter().map(String::as_str).collect();
        let r = report(&[("xl-hvm", &hvm, 0), ("xl-qdisk", &q, 0)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console,
        };
        let p = check_hvm(&o, &["xl"]).unwrap_err();
        assert!(
            p.iter().any(
                |p| p.contains("own `console -t serial` showed no marker in 10 s (status 124)")
            ),
            "{p:?}"
        );
    }

    #[test]
    fn the_emulated_nic_must_be_a_port_of_the_bridge_and_up() {
        let q = good_qdisk("xl");
        let q: Vec<&str> = q.iter().map(String::as_str).collect();
        let console = format!("(d3) RXL-HVM-BOOT-OK\n{}", boot_console("xl"));
        let console = console.as_str();
        let (k, a) = (good_kernel("xl"), good_ahci());
        let (k, a) = (strs(&k), strs(&a));
        let judge = |hvm: &[&str]| {
            let r = report(&[
                ("xl-hvm", hvm, 0),
                ("xl-qdisk", &q, 0),
                ("xl-hvmkernel", &k, 0),
                ("xl-hvmahci", &a, 0),
            ]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console,
            };
            check_hvm(&o, &["xl"])
        };
        let s = judge(GOOD_HVM).unwrap();
        assert!(s.contains("tap vif3.0-emu in xenbr0"), "{s}");
        // No tap at all, a tap outside the bridge, a tap down, a tap left after destroy.
        let swap = |from: &str, to: &'static str| -> Vec<&str> {
            GOOD_HVM
                .iter()
                .map(|l| if *l == from { to } else { *l })
                .collect()
        };
        let p = judge(&swap("tap_master=xenbr0", "tap_master=none")).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("vif3.0-emu is not a port of xenbr0") && p.contains("none")),
            "{p:?}"
        );
        let p = judge(&swap("tap_up=1", "tap_up=0")).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("vif3.0-emu is in xenbr0 but not up")),
            "{p:?}"
        );
        let p = judge(&swap("vif_master=xenbr0", "vif_master=")).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("vif3.0 is not a port of xenbr0")),
            "{p:?}"
        );
        let no_nic: Vec<&str> = GOOD_HVM
            .iter()
            .map(|l| {
                if l.contains("-netdev") {
                    "/usr/libexec/xen-qemu-system-i386 -xen-domid 3 -net none -machine xenfv,suppress-vmdesc=on"
                } else {
                    l
                }
            })
            .collect();
        let p = judge(&no_nic).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("no device model command line with -netdev type=tap")),
            "{p:?}"
        );
        let mut left = GOOD_HVM.to_vec();
        left.insert(left.len() - 1, "leftover: interface vif3.0-emu");
        let p = judge(&left).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("leftover: interface vif3.0-emu")),
            "{p:?}"
        );
    }

    fn good_dmcrash() -> Vec<String> {
        [
            "create_rc=0",
            "create_ms=5000",
            "domid=9",
            "shutdown_rc=1",
            "shutdown_hint=1",
            "rxl: error: domain 9 has no PV control interface (...); use -F to send the ACPI power button event instead",
            "xl_shutdown_rc=1",
            "PV control interface not available: ...",
            "trigger_rc=0",
            "xl_trigger_rc=0",
            "state_after_trigger=r",
            "dm_pid=400",
            "gone_ms=2100",
            "--- monitord log (domain 9)",
            "device model of domain 9 (pid 400) exited: treating as a crash",
            "crash_logged=1",
            "--- leftovers",
            "--- leftovers end",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    #[test]
    fn a_killed_device_model_must_be_a_crash_that_leaves_nothing() {
        let judge = |lines: &[String]| {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let r = report(&[(DM_CRASH_CAP, &lines, 0)]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console: "",
            };
            let mut problems = Vec::new();
            let s = check_dm_crash(&o, DM_CRASH_CAP, &mut problems);
            (s, problems)
        };
        let (s, p) = judge(&good_dmcrash());
        assert!(p.is_empty(), "{p:?}");
        assert!(s.unwrap_or_default().contains("destroyed in 2100 ms"));
        for (line, bad, want) in [
            ("shutdown_rc=1", "shutdown_rc=0", "a refusal"),
            ("shutdown_hint=1", "shutdown_hint=0", "use -F"),
            ("xl_shutdown_rc=1", "xl_shutdown_rc=0", "xl's refusal"),
            ("trigger_rc=0", "trigger_rc=1", "trigger_rc"),
            ("xl_trigger_rc=0", "xl_trigger_rc=2", "xl_trigger_rc"),
            ("crash_logged=1", "crash_logged=0", "crash line"),
            ("gone_ms=2100", "gone_ms=none", "destroyed by on_crash"),
            (
                "--- leftovers end",
                "leftover: qemu 400 x -xen-domid 9 ",
                "leftover: qemu",
            ),
        ] {
            let l: Vec<String> = good_dmcrash()
                .into_iter()
                .map(|x| if x == line { bad.to_owned() } else { x })
                .collect();
            let (s, p) = judge(&l);
            assert!(s.is_none(), "{bad}");
            assert!(p.iter().any(|p| p.contains(want)), "{bad}: {p:?}");
        }
        // A capture that did not finish well is not a pass.
        let lines: Vec<String> = good_dmcrash();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let r = report(&[(DM_CRASH_CAP, &lines, 1)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console: "",
        };
        let mut problems = Vec::new();
        assert!(check_dm_crash(&o, DM_CRASH_CAP, &mut problems).is_none());
        assert!(!problems.is_empty());
    }

    fn good_dmfail(program: &str) -> Vec<String> {
        vec![
            "case=x".into(),
            "create_rc=1".into(),
            "create_ms=900".into(),
            "--- rxl create's output".into(),
            "rxl: error: cannot create dmfail-x: create failed at step \"device model\": device model of domain 7: it exited before it confirmed (exit status: 1)".into(),
            format!("  command: {program} -xen-domid 7 -no-shutdown ..."),
            "  log: /var/log/rxl/qemu-dm-dmfail-x.log".into(),
            "--- output end".into(),
            "failed_domid=7".into(),
            "--- leftovers".into(),
            "--- leftovers end".into(),
        ]
    }

    #[test]
    fn a_failed_device_model_must_fail_the_create_by_name_and_leave_nothing() {
        let judge = |lines: &[String]| {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let r = report(&[("rxl-dmfail-exits", &lines, 0)]);
            let o = Outcome {
                step: "hvm",
                report: &r,
                console: "",
            };
            let mut problems = Vec::new();
            let s = check_dm_failure(&o, "rxl-dmfail-exits", "/bin/false", &mut problems);
            (s, problems)
        };
        let (s, p) = judge(&good_dmfail("/bin/false"));
        assert!(p.is_empty(), "{p:?}");
        assert!(s
            .unwrap_or_default()
            .contains("create failed (status 1) in 900 ms"),);
        // The create succeeded.
        let mut l = good_dmfail("/bin/false");
        l[1] = "create_rc=0".into();
        let (_, p) = judge(&l);
        assert!(
            p.iter().any(|p| p.contains("rxl create succeeded")),
            "{p:?}"
        );
        // The error names neither the command line nor the log.
        let mut l = good_dmfail("/bin/false");
        l.retain(|x| {
            !x.trim_start().starts_with("command:") && !x.trim_start().starts_with("log:")
        });
        let (_, p) = judge(&l);
        assert!(
            p.iter()
                .any(|p| p.contains("does not show the command line")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("does not name the log")),
            "{p:?}"
        );
        // Each kind of leftover is named.
        for left in [
            "leftover: domain dmfail-exits",
            "leftover: qemu 311 /bin/false -xen-domid 7 -name dmfail-exits ",
            "leftover: socket /var/run/xen/qmp-libxl-7",
            "leftover: xenstore /local/domain/7",
            "leftover: xenstore /local/domain/0/device-model/7",
            "leftover: xenstore /local/domain/0/backend/vif/7",
            "leftover: interface vif7.0",
            "leftover: interface vif7.0-emu",
        ] {
            let mut l = good_dmfail("/bin/false");
            l.insert(l.len() - 1, left.into());
            let (s, p) = judge(&l);
            assert!(s.is_none());
            assert!(p.iter().any(|p| p.contains(left)), "{left}: {p:?}");
        }
        // Without a domid nothing was looked for; a capture cut short is not a pass.
        let mut l = good_dmfail("/bin/false");
        l.retain(|x| !x.starts_with("failed_domid="));
        assert!(judge(&l).1.iter().any(|p| p.contains("no -xen-domid")));
        let mut l = good_dmfail("/bin/false");
        l.pop();
        assert!(judge(&l)
            .1
            .iter()
            .any(|p| p.contains("not listed to the end")));
        // With rxl selected, the failure captures are required.
        let q = good_qdisk("rxl");
        let q: Vec<&str> = q.iter().map(String::as_str).collect();
        let r = report(&[("rxl-hvm", GOOD_HVM, 0), ("rxl-qdisk", &q, 0)]);
        let o = Outcome {
            step: "hvm",
            report: &r,
            console: "(d3) RXL-HVM-BOOT-OK\n",
        };
        let p = check_hvm(&o, &["rxl"]).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.contains("hvm/rxl-dmfail-missing never ran")),
            "{p:?}"
        );
    }
}

//! An HVM domain built in-process on the simulated host, so that its memory can be read:
//! hvmloader, the BIOS module, the start info block, the HVM info table; and the HVM
//! context the first vCPU gets.

use std::path::Path;
use std::time::Duration;

use pvh::FirmwareSearch;
use sim::{HostConfig, SimHost};
use toolstack::create::CreateOptions;
use xen_host::{DomId, Hypervisor, Store as _};

/// An ELF32 hvmloader stand-in: 8 KiB of code at 1 MiB, 16 KiB in memory, entry 1 MiB.
fn hvmloader() -> Vec<u8> {
    let paddr: u32 = 0x10_0000;
    let code = vec![0x90u8; 8192];
    let mut out = vec![0u8; 52 + 32];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 1;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes());
    out[18..20].copy_from_slice(&3u16.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..28].copy_from_slice(&paddr.to_le_bytes());
    out[28..32].copy_from_slice(&52u32.to_le_bytes());
    out[40..42].copy_from_slice(&52u16.to_le_bytes());
    out[42..44].copy_from_slice(&32u16.to_le_bytes());
    out[44..46].copy_from_slice(&1u16.to_le_bytes());
    out[46..48].copy_from_slice(&40u16.to_le_bytes());
    let off = out.len() as u32;
    out.extend_from_slice(&code);
    let ph = [1, off, paddr, paddr, code.len() as u32, 16 * 1024, 7, 16];
    for (j, w) in ph.iter().enumerate() {
        out[52 + 4 * j..56 + 4 * j].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A device model for the in-process creates: a shell loop stands in for the process
/// (until `dir/stop` exists, 30 s at most) and a thread of this test does QEMU's part: for
/// each domain whose `device-model/D` appears, it answers QMP on `run/qmp-libxl-D`
/// as the simulated device model does (with no chardevs) and writes `state = running`.
fn fake_device_model(dir: &Path) -> toolstack::dm::DmOptions {
    let stop = dir.join("stop");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let host = SimHost::open(dir).expect("open the simulated host");
    let run_dir = run.clone();
    std::thread::spawn(move || {
        let mut served = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            for d in 1u16..8 {
                let dm = format!("/local/domain/0/device-model/{d}");
                let present = host
                    .read(xen_host::TxId::NONE, &dm)
                    .ok()
                    .flatten()
                    .is_some();
                if !present || !served.insert(d) {
                    continue;
                }
                let sock = run_dir.join(format!("qmp-libxl-{d}"));
                // Another stand-in (an earlier `opts` of the same test) serves it.
                let Ok(l) = std::os::unix::net::UnixListener::bind(&sock) else {
                    continue;
                };
                std::thread::spawn(move || {
                    sim::dm::serve_qmp(
                        &l,
                        &sim::dm::QmpAnswers {
                            chardevs: serde_json::json!([]),
                            vnc: sim::dm::query_vnc(None),
                        },
                        &|| {},
                    );
                });
                host.write(xen_host::TxId::NONE, &format!("{dm}/state"), b"running")
                    .expect("confirm");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    toolstack::dm::DmOptions {
        binary: "/bin/sh".into(),
        prefix_args: vec![
            "-c".into(),
            format!(
                "i=0; while [ ! -e {} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
                stop.display()
            ),
            "dm".into(),
        ],
        log_dir: dir.join("log"),
        run_dir: run,
        record_dir: dir.join("records"),
        confirm_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(2),
    }
}

fn opts(dir: &Path) -> CreateOptions {
    let hotplug = sim::SimHotplug::open(dir).expect("simulated hotplug");
    let mut devices =
        toolstack::devices::DeviceOptions::with(std::sync::Arc::new(hotplug), dir.join("rxl/log"));
    devices.dm = fake_device_model(dir);
    devices.timeouts = toolstack::devices::Timeouts {
        init: Duration::from_millis(300),
        hotplug: Duration::from_secs(5),
        destroy: Duration::from_millis(300),
    };
    CreateOptions {
        paused: true,
        state_dir: dir.join("rxl"),
        backend_domid: DomId::DOM0,
        devices,
        bootloader: toolstack::bootloader::BootloaderOptions::new(Path::new("/nonexistent"), None),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[test]
fn an_hvm_guest_s_memory_holds_hvmloader_its_bios_and_start_info() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("fw");
    std::fs::create_dir(&fw).expect("fw dir");
    std::fs::write(fw.join("hvmloader"), hvmloader()).expect("hvmloader");
    std::fs::write(fw.join("bios-256k.bin"), vec![0xea; 256 * 1024]).expect("bios");
    let host = SimHost::create(tmp.path(), HostConfig::default()).expect("simulated host");
    let parsed = xlcfg::parse::parse_str(
        "h.cfg",
        "name = \"h\"\ntype = \"hvm\"\nmemory = 64\nvcpus = 2\nmaxvcpus = 3\nviridian = 1\n",
    );
    let cfg = xlcfg::model::build(&parsed.settings, tmp.path())
        .expect("valid")
        .config;
    let search = FirmwareSearch {
        dirs: vec![fw.clone()],
        kernel_cache: None,
    };
    let plan = toolstack::plan_for(&cfg, &search, &opts(tmp.path()).bootloader).expect("plan");
    let created =
        toolstack::create::create(&host, &host, &cfg, &plan, &opts(tmp.path())).expect("create");
    let dom = created.domid;
    let info = host.domain_info(dom).expect("info").expect("exists");
    assert!(info.hvm && info.hap && info.paused, "{info:?}");
    // libxl's default Viridian groups.
    assert_eq!(
        host.get_hvm_param(dom, xen_host::hvm_param::VIRIDIAN)
            .expect("param"),
        0x1865
    );

    // hvmloader at 1 MiB (its bss zeroed), SeaBIOS page aligned after it.
    let read = |at: u64, len: usize| host.read_guest(dom, at, len).expect("read");
    assert_eq!(read(0x10_0000, 4), vec![0x90; 4]);
    assert_eq!(read(0x10_2000, 4), vec![0; 4]);
    assert_eq!(read(0x10_4000, 4), vec![0xea; 4]);
    // The start info block after the BIOS: one module named "firmware", the memory map.
    let si = 0x14_4000u64;
    let b = read(si, 56 + 64 + 2048 + 24);
    assert_eq!(u32_at(&b, 0), 0x336e_c578);
    assert_eq!(u32_at(&b, 12), 1);
    assert_eq!(u64_at(&b, 16), si + 56);
    assert_eq!((u64_at(&b, 56), u64_at(&b, 64)), (0x10_4000, 256 * 1024));
    assert_eq!(u64_at(&b, 72), si + 120);
    assert_eq!(&b[120..129], b"firmware\0");
    assert_eq!(u64_at(&b, 40), si + 2168);
    assert_eq!((u64_at(&b, 2168), u64_at(&b, 2176)), (1 << 20, 55 << 20));
    // The HVM info table: 3 vCPUs, 2 online.
    let t = read(0x9f800, 48);
    assert_eq!(&t[..8], b"HVM INFO");
    assert_eq!(t.iter().fold(0u8, |a, x| a.wrapping_add(*x)), 0);
    assert_eq!(u32_at(&t, 16), 3);
    assert_eq!(t[32], 0b11);
    // The VGA hole is not populated; the ioreq server pages are.
    assert!(host.read_guest(dom, 0xa0000, 1).is_err());
    assert_eq!(read(0xfeff_0000, 4), vec![0; 4]);

    // vCPU 0 enters hvmloader in flat 32-bit mode with ebx = the start info.
    let ctx = host.get_hvm_context(dom).expect("context");
    let records = xen_abi::hvm::parse_records(&ctx).expect("records");
    let cpu = records
        .iter()
        .find(|r| r.typecode == xen_abi::hvm::typecode::CPU && r.instance == 0)
        .expect("a CPU record");
    let cpu = <xen_abi::hvm::HvmHwCpu as xen_abi::wire::Wire>::decode(cpu.body).expect("cpu");
    assert_eq!((cpu.rip, cpu.rbx, cpu.cr0), (0x10_0000, si, 0x11));

    // The simulated host lets hvmloader start: the domain runs.
    host.unpause(dom).expect("unpause");
    let info = host.domain_info(dom).expect("info").expect("exists");
    assert!(!info.shutdown && !info.paused, "{info:?}");
    host.destroy(dom).expect("destroy");

    // Without the start info's magic, hvmloader cannot start: the domain crashes.
    let parsed = xlcfg::parse::parse_str(
        "h2.cfg",
        "name = \"h2\"\ntype = \"hvm\"\nmemory = 64\nvcpus = 2\nmaxvcpus = 3\n",
    );
    let cfg = xlcfg::model::build(&parsed.settings, tmp.path())
        .expect("valid")
        .config;
    let created =
        toolstack::create::create(&host, &host, &cfg, &plan, &opts(tmp.path())).expect("create");
    let dom = created.domid;
    host.write_guest(dom, si, &[0; 4]).expect("write");
    host.unpause(dom).expect("unpause");
    let info = host.domain_info(dom).expect("info").expect("exists");
    assert!(info.shutdown, "{info:?}");
    assert_eq!(
        info.shutdown_reason(),
        Some(xen_host::ShutdownReason::Crash)
    );
    host.destroy(dom).expect("destroy");
    std::fs::write(tmp.path().join("stop"), b"").expect("stop the stand-ins");
}

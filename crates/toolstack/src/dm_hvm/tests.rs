//! Whole argument vectors against what libxl 4.17 builds for the same configs (written by
//! hand from `libxl__build_device_model_args_new`).

use super::*;

/// [`xenfv`] with the QMP sockets in libxl's run directory.
fn xenfv_at(dom: DomId, cfg: &DomainConfig) -> Result<Xenfv, DmArgsError> {
    xenfv(dom, cfg, Path::new(RUN_DIR))
}

fn cfg(text: &str) -> DomainConfig {
    let parsed = xlcfg::parse::parse_str("g.cfg", text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    xlcfg::model::build(&parsed.settings, Path::new("/srv"))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .config
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The arguments every xenfv command line of domain 5 starts with.
const HEAD: [&str; 14] = [
    "-xen-domid",
    "5",
    "-no-shutdown",
    "-chardev",
    "socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-5,server=on,wait=off",
    "-mon",
    "chardev=libxl-cmd,mode=control",
    "-chardev",
    "socket,id=libxenstat-cmd,path=/var/run/xen/qmp-libxenstat-5,server=on,wait=off",
    "-mon",
    "chardev=libxenstat-cmd,mode=control",
    "-nodefaults",
    "-no-user-config",
    "-name",
];

fn with_head(rest: &[&str]) -> Vec<String> {
    let mut out = v(&HEAD);
    out.extend(v(rest));
    out
}

#[test]
fn command_lines_match_libxl() {
    let cases: [(&str, Vec<String>); 3] = [
        // The defaults: no VNC, Cirrus with 8 MiB, boot order cda, no NIC.
        (
            "name = \"min\"\ntype = \"hvm\"\nmemory = 512\n",
            with_head(&[
                "min",
                "-vnc",
                "none",
                "-display",
                "none",
                "-device",
                "cirrus-vga,vgamem_mb=8",
                "-boot",
                "order=cda",
                "-net",
                "none",
                "-machine",
                "xenfv,suppress-vmdesc=on",
                "-m",
                "504",
            ]),
        ),
        // VNC on localhost, a serial pty, stdvga, SMP, no ACPI, a disk, a CD-ROM, an
        // emulated NIC, extra arguments.
        (
            "name = \"full\"\ntype = \"hvm\"\nmemory = 1024\nvcpus = 2\nmaxvcpus = 4\n\
             vnc = 1\nserial = \"pty\"\nstdvga = 1\nboot = \"dc\"\nacpi = 0\n\
             disk = [ \"/srv/full.img,raw,hda,rw\", \"/srv/inst.iso,raw,hdc,r,devtype=cdrom\" ]\n\
             vif = [ \"mac=00:16:3e:01:02:03,bridge=xenbr0\" ]\n\
             device_model_args = [ \"-d\", \"guest_errors\" ]\n",
            with_head(&[
                "full",
                "-vnc",
                "127.0.0.1:0,to=99",
                "-display",
                "none",
                "-serial",
                "pty",
                "-device",
                "VGA,vgamem_mb=16",
                "-boot",
                "order=dc",
                "-no-acpi",
                "-smp",
                "2,maxcpus=4",
                "-device",
                "rtl8139,id=nic0,netdev=net0,mac=00:16:3e:01:02:03",
                "-netdev",
                "type=tap,id=net0,ifname=vif5.0-emu,br=xenbr0,script=no,downscript=no",
                "-d",
                "guest_errors",
                "-machine",
                "xenfv,suppress-vmdesc=on",
                "-m",
                "1008",
                "-drive",
                "file=/srv/full.img,if=ide,index=0,media=disk,format=raw,cache=writeback",
                "-drive",
                "if=none,readonly=on,id=ide-5632,file=/srv/inst.iso,format=raw",
                "-device",
                "ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0",
            ]),
        ),
        // Direct kernel boot, no graphics, a larger MMIO hole, a qcow2 disk on xvda.
        (
            "name = \"direct\"\ntype = \"hvm\"\nmemory = 256\nkernel = \"/boot/vmlinuz\"\n\
             ramdisk = \"/boot/initrd.img\"\nextra = \"console=ttyS0\"\nnographic = 1\n\
             vga = \"none\"\nmmio_hole = 1024\nserial = [ \"pty\", \"null\" ]\n\
             disk = [ \"/srv/d.qcow2,qcow2,xvda,w\" ]\n\
             vif = [ \"type=vif,bridge=xenbr0\" ]\n",
            with_head(&[
                "direct",
                "-vnc",
                "none",
                "-display",
                "none",
                "-kernel",
                "/boot/vmlinuz",
                "-initrd",
                "/boot/initrd.img",
                "-append",
                "console=ttyS0",
                "-serial",
                "pty",
                "-serial",
                "null",
                "-nographic",
                "-boot",
                "order=cda",
                "-net",
                "none",
                "-machine",
                "xenfv,suppress-vmdesc=on,max-ram-below-4g=3221225472",
                "-m",
                "256",
                "-drive",
                "file=/srv/d.qcow2,if=ide,index=0,media=disk,format=qcow2,cache=writeback",
            ]),
        ),
    ];
    for (text, want) in cases {
        let got = xenfv_args(DomId(5), &cfg(text)).expect("args");
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn vnc_listen_rules() {
    let base = "name = \"g\"\ntype = \"hvm\"\nvnc = 1\n";
    let arg = |extra: &str| {
        let a = xenfv_args(DomId(5), &cfg(&format!("{base}{extra}"))).expect("args");
        let i = a.iter().position(|x| x == "-vnc").expect("-vnc");
        a[i + 1].clone()
    };
    assert_eq!(
        arg("vnclisten = \"0.0.0.0\"\nvncdisplay = 2\nvncunused = 0\n"),
        "0.0.0.0:2"
    );
    assert_eq!(arg("vnclisten = \"192.0.2.1:3\"\n"), "192.0.2.1:3,to=99");
    let e = xenfv_args(
        DomId(5),
        &cfg(&format!(
            "{base}vnclisten = \"192.0.2.1:3\"\nvncdisplay = 4\n"
        )),
    )
    .unwrap_err();
    assert_eq!(e, DmArgsError::VncDisplayTwice("192.0.2.1:3".into()));
    // sdl keeps -display none first, then asks for SDL; nographic needs neither.
    let a = xenfv_args(
        DomId(5),
        &cfg("name = \"g\"\ntype = \"hvm\"\nsdl = 1\nnographic = 1\n"),
    )
    .expect("args");
    let s = a.join(" ");
    assert!(s.contains("-display none -display sdl"), "{s}");
    assert!(!s.contains("-nographic"), "{s}");
}

#[test]
fn disks_libxl_refuses_or_leaves_to_pv_drivers() {
    let base = "name = \"g\"\ntype = \"hvm\"\n";
    let e = xenfv_at(
        DomId(5),
        &cfg(&format!("{base}disk = [ \"/srv/a.img,raw,hda,r\" ]\n")),
    )
    .unwrap_err();
    assert_eq!(e, DmArgsError::ReadOnlyDisk("hda".into()));
    assert!(e.to_string().contains("read-only IDE"), "{e}");
    let e = xenfv_at(
        DomId(5),
        &cfg(&format!("{base}disk = [ \"/srv/a.img,raw,sda,w\" ]\n")),
    )
    .unwrap_err();
    assert_eq!(e, DmArgsError::ScsiDisk("sda".into()));
    // The fifth disk is PV only; an empty CD-ROM drive has no file.
    let x = xenfv_at(
        DomId(5),
        &cfg(&format!(
            "{base}disk = [ \"/srv/e.img,raw,xvde,w\", \",,hdd,devtype=cdrom\" ]\n"
        )),
    )
    .expect("args");
    assert_eq!(x.not_emulated, v(&["xvde: only 4 emulated IDE disks"]));
    let s = x.args.join(" ");
    assert!(
        s.ends_with(
            "-drive if=none,readonly=on,id=ide-5696 -device ide-cd,id=ide-5696,drive=ide-5696,bus=ide.1,unit=1"
        ),
        "{s}"
    );
    assert_eq!(
        x.env,
        vec![
            ("XEN_QEMU_CONSOLE_LIMIT".to_string(), "1048576".to_string()),
            ("XEN_DOMAIN_ID".to_string(), "5".to_string())
        ]
    );
    // Not for PVH.
    let e = xenfv_at(
        DomId(5),
        &cfg("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n"),
    )
    .unwrap_err();
    assert_eq!(e, DmArgsError::NotHvm("pvh"));
}

/// The arguments of domain 5 from `-vnc` on, for the defaults (no VNC, Cirrus, cda).
fn defaults_then(name: &str, nics: &[&str], tail: &[&str]) -> Vec<String> {
    let mut out = with_head(&[
        name,
        "-vnc",
        "none",
        "-display",
        "none",
        "-device",
        "cirrus-vga,vgamem_mb=8",
        "-boot",
        "order=cda",
    ]);
    out.extend(v(nics));
    out.extend(v(&["-machine", "xenfv,suppress-vmdesc=on", "-m", "248"]));
    out.extend(v(tail));
    out
}

#[test]
fn emulated_nics_as_libxl_builds_them() {
    let base = "name = \"n\"\ntype = \"hvm\"\nmemory = 256\n";
    let args = |extra: &str| xenfv_args(DomId(5), &cfg(&format!("{base}{extra}"))).expect("args");
    // One NIC, HVM's default type (ioemu) and model (rtl8139); the MAC is the vif's.
    assert_eq!(
        args("vif = [ \"mac=00:16:3e:0a:0b:0c,bridge=xenbr0\" ]\n"),
        defaults_then(
            "n",
            &[
                "-device",
                "rtl8139,id=nic0,netdev=net0,mac=00:16:3e:0a:0b:0c",
                "-netdev",
                "type=tap,id=net0,ifname=vif5.0-emu,br=xenbr0,script=no,downscript=no",
            ],
            &[],
        )
    );
    // Two NICs with other models and bridges, each on its devid's tap; a PV-only vif
    // between them gets no NIC and keeps its devid.
    assert_eq!(
        args(
            "vif = [ \"mac=00:16:3e:00:00:01,model=e1000,type=ioemu\",\n\
             \"mac=00:16:3e:00:00:02,type=vif,bridge=br1\",\n\
             \"mac=00:16:3e:00:00:03,model=virtio-net-pci,bridge=br2\" ]\n"
        ),
        defaults_then(
            "n",
            &[
                "-device",
                "e1000,id=nic0,netdev=net0,mac=00:16:3e:00:00:01",
                "-netdev",
                "type=tap,id=net0,ifname=vif5.0-emu,br=xenbr0,script=no,downscript=no",
                "-device",
                "virtio-net-pci,id=nic2,netdev=net2,mac=00:16:3e:00:00:03",
                "-netdev",
                "type=tap,id=net2,ifname=vif5.2-emu,br=br2,script=no,downscript=no",
            ],
            &[],
        )
    );
    // Only PV-only vifs: no emulated NIC at all.
    assert_eq!(
        args("vif = [ \"type=vif\" ]\n"),
        defaults_then("n", &["-net", "none"], &[])
    );
}

#[test]
fn ahci_disks_as_libxl_builds_them() {
    let base = "name = \"a\"\ntype = \"hvm\"\nmemory = 256\nhdtype = \"ahci\"\n";
    let args = |extra: &str| xenfv_at(DomId(5), &cfg(&format!("{base}{extra}")));
    // The controller, then each hard disk on its port; a CD-ROM stays on IDE; the
    // sixth disk (xvdf) is still emulated, the seventh is PV only.
    let x = args(
        "disk = [ \"/srv/a.img,raw,hda,w\", \"/srv/b.qcow2,qcow2,xvdb,w\",\n\
         \"/srv/i.iso,raw,hdc,r,devtype=cdrom\", \"/srv/f.img,raw,xvdf,w\",\n\
         \"/srv/g.img,raw,xvdg,w\" ]\n",
    )
    .expect("args");
    assert_eq!(
        x.args,
        defaults_then(
            "a",
            &["-net", "none"],
            &[
                "-device",
                "ahci,id=ahci0",
                "-drive",
                "file=/srv/a.img,if=none,id=ahcidisk-0,format=raw,cache=writeback",
                "-device",
                "ide-hd,bus=ahci0.0,unit=0,drive=ahcidisk-0",
                "-drive",
                "file=/srv/b.qcow2,if=none,id=ahcidisk-1,format=qcow2,cache=writeback",
                "-device",
                "ide-hd,bus=ahci0.1,unit=0,drive=ahcidisk-1",
                "-drive",
                "if=none,readonly=on,id=ide-5632,file=/srv/i.iso,format=raw",
                "-device",
                "ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0",
                "-drive",
                "file=/srv/f.img,if=none,id=ahcidisk-5,format=raw,cache=writeback",
                "-device",
                "ide-hd,bus=ahci0.5,unit=0,drive=ahcidisk-5",
            ],
        )
    );
    assert_eq!(x.not_emulated, v(&["xvdg: only 4 emulated IDE disks"]));
    // The controller is there even without a disk, as libxl adds it.
    assert_eq!(
        args("").expect("args").args,
        defaults_then("a", &["-net", "none"], &["-device", "ahci,id=ahci0"])
    );
    let e = args("disk = [ \"/srv/a.img,raw,hda,r\" ]\n").unwrap_err();
    assert_eq!(e, DmArgsError::ReadOnlyAhciDisk("hda".into()));
    assert!(e.to_string().contains("read-only AHCI"), "{e}");
}

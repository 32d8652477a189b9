//! The xenstore nodes a PVH domain gets, as libxl writes them (4.17), as pure data.
//!
//! Three groups, written at different times of a create:
//! - [`skeleton`]: right after the domain exists, so the name is visible at once;
//! - [`post_build`]: memory, store ring, vCPU availability, and the primary console that
//!   xenconsoled attaches to.
//!
//! [`apply`] writes a group in one transaction.

use xen_host::{Access, DomId, Perm, Result, Store, StoreOp, TxId};

/// One node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Absolute path.
    pub path: String,
    /// The value; `None` makes an empty node (mkdir).
    pub value: Option<String>,
    /// Permissions to set; `None` keeps what the node inherits.
    pub perms: Option<Vec<Perm>>,
}

fn perm(domid: DomId, access: Access) -> Perm {
    Perm { domid, access }
}

/// Owned by dom0, readable by the guest.
fn ro(dom: DomId) -> Vec<Perm> {
    vec![perm(DomId::DOM0, Access::None), perm(dom, Access::Read)]
}

/// Owned by the guest (dom0 can always access).
fn rw(dom: DomId) -> Vec<Perm> {
    vec![perm(dom, Access::None)]
}

/// dom0 only.
fn none() -> Vec<Perm> {
    vec![perm(DomId::DOM0, Access::None)]
}

/// `/local/domain/<dom>`.
pub fn dom_path(dom: DomId) -> String {
    format!("/local/domain/{dom}")
}

/// `/vm/<uuid>`.
pub fn vm_path(uuid: &str) -> String {
    format!("/vm/{uuid}")
}

/// `/libxl/<dom>`: toolstack-private data (dom0 only).
pub fn libxl_path(dom: DomId) -> String {
    format!("/libxl/{dom}")
}

/// The console backend directory in dom0's tree.
pub fn console_backend_path(dom: DomId) -> String {
    format!("/local/domain/0/backend/console/{dom}/0")
}

/// Every path a domain owns in xenstore: what [`remove`] deletes.
pub fn owned_paths(dom: DomId, uuid: &str) -> Vec<String> {
    vec![
        dom_path(dom),
        vm_path(uuid),
        libxl_path(dom),
        format!("/local/domain/0/backend/console/{dom}"),
    ]
}

struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    fn mknod(&mut self, path: String, perms: Vec<Perm>) {
        self.nodes.push(Node {
            path,
            value: None,
            perms: Some(perms),
        });
    }
    fn write(&mut self, path: String, value: impl Into<String>) {
        self.nodes.push(Node {
            path,
            value: Some(value.into()),
            perms: None,
        });
    }
    fn write_perms(&mut self, path: String, value: impl Into<String>, perms: Vec<Perm>) {
        self.nodes.push(Node {
            path,
            value: Some(value.into()),
            perms: Some(perms),
        });
    }
}

/// What the skeleton needs to know.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    /// The domain.
    pub dom: DomId,
    /// Its uuid, in the 8-4-4-4-12 text form.
    pub uuid: &'a str,
    /// Its name.
    pub name: &'a str,
    /// `"pvh"`, `"pv"` or `"hvm"`.
    pub kind: &'a str,
}

/// The nodes libxl creates with the domain (libxl__domain_make).
pub fn skeleton(id: &Identity<'_>) -> Vec<Node> {
    let dom = id.dom;
    let dp = dom_path(dom);
    let vp = vm_path(id.uuid);
    let lp = libxl_path(dom);
    let mut b = Builder { nodes: Vec::new() };
    b.mknod(dp.clone(), ro(dom));
    b.mknod(vp.clone(), ro(dom));
    b.mknod(lp.clone(), none());
    b.mknod(format!("{lp}/device"), none());
    b.write(format!("{dp}/vm"), vp.clone());
    b.write(format!("{dp}/name"), id.name);
    b.mknod(format!("{dp}/cpu"), ro(dom));
    b.mknod(format!("{dp}/memory"), ro(dom));
    b.mknod(format!("{dp}/device"), ro(dom));
    b.mknod(format!("{dp}/device/suspend/event-channel"), rw(dom));
    b.mknod(format!("{dp}/control"), ro(dom));
    if id.kind == "hvm" {
        b.mknod(format!("{dp}/hvmloader"), ro(dom));
    }
    for node in [
        "shutdown",
        "feature-poweroff",
        "feature-reboot",
        "feature-suspend",
        "sysrq",
    ] {
        b.mknod(format!("{dp}/control/{node}"), rw(dom));
    }
    for node in ["data", "drivers", "feature", "attr", "error"] {
        b.mknod(format!("{dp}/{node}"), rw(dom));
    }
    b.write(format!("{vp}/uuid"), id.uuid);
    b.write(format!("{vp}/name"), id.name);
    b.write(
        format!("{dp}/control/platform-feature-multiprocessor-suspend"),
        "1",
    );
    b.write(
        format!("{dp}/control/platform-feature-xs_reset_watches"),
        "1",
    );
    b.write(format!("{lp}/type"), id.kind);
    b.nodes
}

/// What the post-build nodes need to know.
#[derive(Clone, Debug)]
pub struct Built {
    /// The domain.
    pub dom: DomId,
    /// `memory/static-max`, KiB.
    pub max_memkb: u64,
    /// `memory/target`, KiB.
    pub target_memkb: u64,
    /// `memory/videoram`, KiB (0 but for HVM guests).
    pub videoram_kib: u64,
    /// The xenstore ring's event channel (in the guest).
    pub store_port: u32,
    /// The xenstore ring's gfn.
    pub store_gfn: u64,
    /// The console ring's event channel.
    pub console_port: u32,
    /// The console ring's gfn.
    pub console_gfn: u64,
    /// vCPUs online at boot.
    pub vcpus: u32,
    /// vCPUs the domain may ever have.
    pub max_vcpus: u32,
}

/// xenconsoled's buffer limit, as libxl sets it.
pub const CONSOLE_LIMIT: u64 = 1_048_576;
/// XenbusStateInitialising.
const XENBUS_INITIALISING: u32 = 1;

/// The nodes libxl writes after the build (libxl__build_post and the primary console).
pub fn post_build(b: &Built) -> Vec<Node> {
    let dom = b.dom;
    let dp = dom_path(dom);
    let mut out = Builder { nodes: Vec::new() };
    out.write(format!("{dp}/memory/static-max"), b.max_memkb.to_string());
    out.write(format!("{dp}/memory/target"), b.target_memkb.to_string());
    out.write(format!("{dp}/memory/videoram"), b.videoram_kib.to_string());
    out.write(format!("{dp}/domid"), dom.to_string());
    out.write(format!("{dp}/store/port"), b.store_port.to_string());
    out.write(format!("{dp}/store/ring-ref"), b.store_gfn.to_string());
    for cpu in 0..b.max_vcpus {
        let state = if cpu < b.vcpus { "online" } else { "offline" };
        out.write(format!("{dp}/cpu/{cpu}/availability"), state);
    }

    // The primary console: the frontend is read-only for the guest (console 0 is special
    // in libxl), the backend lives in dom0's tree and the guest may read it.
    let front = format!("{dp}/console");
    let back = console_backend_path(dom);
    let ro_front = vec![perm(DomId::DOM0, Access::None), perm(dom, Access::Read)];
    let front_rw = vec![perm(dom, Access::None), perm(DomId::DOM0, Access::Read)];
    out.mknod(front.clone(), ro_front.clone());
    out.write(format!("{front}/backend"), back.clone());
    out.write_perms(format!("{front}/backend-id"), "0", front_rw);
    for (key, value) in [
        ("limit", CONSOLE_LIMIT.to_string()),
        ("type", "xenconsoled".to_string()),
        ("output", "pty".to_string()),
        ("tty", String::new()),
        ("port", b.console_port.to_string()),
        ("ring-ref", b.console_gfn.to_string()),
    ] {
        out.write_perms(format!("{front}/{key}"), value, ro_front.clone());
    }
    // libxl's own record of the device (libxl__device_generic_add): what `xl destroy`
    // reads to remove the frontend and backend directories.
    let record = format!("{}/device/console/0", libxl_path(dom));
    out.write(format!("{record}/frontend"), front.clone());
    out.write(format!("{record}/backend"), back.clone());
    out.mknod(back.clone(), ro_front);
    out.write(format!("{back}/frontend"), front);
    for (key, value) in [
        ("frontend-id", dom.to_string()),
        ("online", "1".to_string()),
        ("state", XENBUS_INITIALISING.to_string()),
        ("protocol", "vt100".to_string()),
    ] {
        out.write(format!("{back}/{key}"), value);
    }
    out.nodes
}

/// The nodes libxl writes under `/vm/UUID/image` for a PV guest (libxl__domain_build): its
/// OS type, kernel, and ramdisk and command line when it has them.
pub fn pv_image(
    uuid: &str,
    kernel: &str,
    ramdisk: Option<&str>,
    cmdline: Option<&str>,
) -> Vec<Node> {
    let image = format!("{}/image", vm_path(uuid));
    let mut out = Builder { nodes: Vec::new() };
    out.write(format!("{image}/ostype"), "linux");
    out.write(format!("{image}/kernel"), kernel);
    if let Some(r) = ramdisk {
        out.write(format!("{image}/ramdisk"), r);
    }
    if let Some(c) = cmdline {
        out.write(format!("{image}/cmdline"), c);
    }
    out.nodes
}

/// The nodes libxl writes for an HVM guest: under `/vm/UUID` the RTC offset and OS type
/// (libxl__domain_build), under the domain the platform keys hvmloader reads
/// (`platform/acpi`, `acpi_s3`, `acpi_s4`, `acpi_laptop_slate`, `mmio_hole_size` when
/// `mmio_hole` enlarges the hole, `device-model`), and the BIOS choice with memory
/// relocation off (`hvmloader/bios`, `hvmloader/allow-memory-relocate`, written by
/// libxl__spawn_local_dm before QEMU starts).
pub fn hvm_nodes(dom: DomId, uuid: &str, hvm: &xlcfg::model::HvmConfig, bios: &str) -> Vec<Node> {
    let dp = dom_path(dom);
    let vp = vm_path(uuid);
    let flag = |on: bool| if on { "1" } else { "0" };
    let mut out = Builder { nodes: Vec::new() };
    out.write(format!("{vp}/rtc/timeoffset"), "");
    out.write(format!("{vp}/image/ostype"), "hvm");
    out.write(format!("{dp}/platform/acpi"), flag(hvm.acpi));
    out.write(format!("{dp}/platform/acpi_s3"), "1");
    out.write(format!("{dp}/platform/acpi_s4"), "1");
    out.write(format!("{dp}/platform/acpi_laptop_slate"), "0");
    if let Some(mib) = hvm.mmio_hole_mib {
        let bytes = mib << 20;
        // libxl: only a hole that starts at or below HVM_BELOW_4G_MMIO_START.
        if bytes < 1 << 32 && (1u64 << 32) - bytes <= 0xf000_0000 {
            out.write(format!("{dp}/platform/mmio_hole_size"), bytes.to_string());
        }
    }
    out.write(format!("{dp}/platform/device-model"), "qemu_xen");
    out.write(format!("{dp}/hvmloader/bios"), bios);
    out.write(format!("{dp}/hvmloader/allow-memory-relocate"), "0");
    out.nodes
}

/// The directories [`skeleton`] makes anew: what an earlier domain with this id (or uuid)
/// left there goes first, as libxl__domain_make removes them in its transaction.
pub fn skeleton_roots(id: &Identity<'_>) -> Vec<String> {
    vec![dom_path(id.dom), vm_path(id.uuid), libxl_path(id.dom)]
}

/// The directories [`post_build`] makes anew: the primary console's frontend and backend
/// (libxl__device_generic_add removes both before it writes them).
pub fn post_build_roots(dom: DomId) -> Vec<String> {
    vec![
        format!("{}/console", dom_path(dom)),
        console_backend_path(dom),
    ]
}

/// Write `nodes` in one transaction (retried on conflict).
pub fn apply<S: Store + ?Sized>(store: &S, nodes: &[Node]) -> Result<()> {
    apply_fresh(store, &[], nodes)
}

/// Remove `fresh` (each with everything below it), then write `nodes`, in one transaction
/// (retried on conflict). Below a fresh directory every node is new, so it takes its
/// parent's permissions (xenstored gives a node made by dom0 the permissions of its
/// parent); a node whose permissions are those is not sent a `SET_PERMS`.
pub fn apply_fresh<S: Store + ?Sized>(store: &S, fresh: &[String], nodes: &[Node]) -> Result<()> {
    let ops = ops(fresh, nodes);
    xen_host::transaction(store, |tx| store.apply_ops(tx, &ops))
}

/// The requests of [`apply_fresh`], sent together ([`Store::apply_ops`]: one round trip
/// per window of requests rather than one per request).
fn ops<'a>(fresh: &'a [String], nodes: &'a [Node]) -> Vec<StoreOp<'a>> {
    let mut ops: Vec<StoreOp<'a>> = fresh.iter().map(|p| StoreOp::Rm(p)).collect();
    // The permissions of every node made so far below a fresh directory.
    let mut made: Vec<(&str, &[Perm])> = Vec::new();
    let below_fresh = |path: &str| fresh.iter().any(|r| is_within(path, r));
    for node in nodes {
        let path = node.path.as_str();
        ops.push(match &node.value {
            Some(v) => StoreOp::Write(path, v.as_bytes()),
            None => StoreOp::Mkdir(path),
        });
        let fresh_here = below_fresh(path) && !made.iter().any(|(p, _)| *p == path);
        let inherited = if fresh_here {
            inherited_perms(&made, path)
        } else {
            None
        };
        match &node.perms {
            Some(perms) => {
                if inherited != Some(perms.as_slice()) {
                    ops.push(StoreOp::SetPerms(path, perms));
                }
                if below_fresh(path) {
                    made.retain(|(p, _)| *p != path);
                    made.push((path, perms));
                }
            }
            None => {
                if let Some(p) = inherited {
                    made.push((path, p));
                }
            }
        }
    }
    ops
}

/// Whether `path` is `dir` or below it.
fn is_within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The permissions a new node at `path` gets: those of its nearest ancestor in `made`.
fn inherited_perms<'a>(made: &[(&str, &'a [Perm])], path: &str) -> Option<&'a [Perm]> {
    let mut p = path;
    while let Some((parent, _)) = p.rsplit_once('/') {
        if let Some((_, perms)) = made.iter().rev().find(|(m, _)| *m == parent) {
            return Some(perms);
        }
        p = parent;
    }
    None
}

/// Remove every node a domain owns (best effort: each path is tried).
pub fn remove<S: Store + ?Sized>(store: &S, dom: DomId, uuid: &str) -> Result<()> {
    let mut first_err = None;
    for path in owned_paths(dom, uuid) {
        if let Err(e) = store.rm(TxId::NONE, &path) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(nodes: &'a [Node], path: &str) -> &'a Node {
        nodes
            .iter()
            .find(|n| n.path == path)
            .unwrap_or_else(|| panic!("no node {path}"))
    }

    /// The PVH domain 7 called web, uuid u-1.
    fn web7() -> Identity<'static> {
        Identity {
            dom: DomId(7),
            uuid: "u-1",
            name: "web",
            kind: "pvh",
        }
    }

    #[test]
    fn skeleton_matches_libxl() {
        let id = web7();
        let nodes = skeleton(&id);
        assert_eq!(
            find(&nodes, "/local/domain/7/name").value.as_deref(),
            Some("web")
        );
        assert_eq!(
            find(&nodes, "/local/domain/7/vm").value.as_deref(),
            Some("/vm/u-1")
        );
        assert_eq!(find(&nodes, "/libxl/7/type").value.as_deref(), Some("pvh"));
        // The guest can write its control/shutdown node, and only read its domain dir.
        assert_eq!(
            find(&nodes, "/local/domain/7/control/shutdown").perms,
            Some(vec![perm(DomId(7), Access::None)])
        );
        assert_eq!(
            find(&nodes, "/local/domain/7").perms,
            Some(vec![
                perm(DomId(0), Access::None),
                perm(DomId(7), Access::Read)
            ])
        );
        // The domain directory comes before anything inside it.
        let pos = |p: &str| nodes.iter().position(|n| n.path == p).unwrap_or(usize::MAX);
        assert!(pos("/local/domain/7") < pos("/local/domain/7/control/shutdown"));
    }

    #[test]
    fn only_permissions_a_new_node_would_not_inherit_are_sent() {
        let id = web7();
        let nodes = skeleton(&id);
        let roots = skeleton_roots(&id);
        let ops = ops(&roots, &nodes);
        let set: Vec<&str> = ops
            .iter()
            .filter_map(|o| match o {
                StoreOp::SetPerms(p, _) => Some(*p),
                _ => None,
            })
            .collect();
        // The stale directories go first.
        assert_eq!(
            ops[..3],
            [
                StoreOp::Rm("/local/domain/7"),
                StoreOp::Rm("/vm/u-1"),
                StoreOp::Rm("/libxl/7")
            ]
        );
        // Roots and nodes the guest owns get theirs; the read-only directories inside the
        // read-only domain directory, and /libxl/7/device, inherit them.
        for p in [
            "/local/domain/7",
            "/vm/u-1",
            "/libxl/7",
            "/local/domain/7/control/shutdown",
            "/local/domain/7/data",
            "/local/domain/7/device/suspend/event-channel",
        ] {
            assert!(set.contains(&p), "{p}: {set:?}");
        }
        for p in [
            "/local/domain/7/cpu",
            "/local/domain/7/memory",
            "/local/domain/7/device",
            "/local/domain/7/control",
            "/libxl/7/device",
        ] {
            assert!(!set.contains(&p), "{p}: {set:?}");
        }
        let explicit = nodes.iter().filter(|n| n.perms.is_some()).count();
        assert_eq!(set.len(), explicit - 5);
        // Without fresh directories, every node's permissions are sent.
        let all = ops_of(&[], &nodes);
        assert_eq!(all, explicit);
    }

    /// The number of `SET_PERMS` among the requests.
    fn ops_of(fresh: &[String], nodes: &[Node]) -> usize {
        ops(fresh, nodes)
            .iter()
            .filter(|o| matches!(o, StoreOp::SetPerms(..)))
            .count()
    }

    #[test]
    fn a_node_made_again_with_other_permissions_gets_them() {
        let ro = ro(DomId(3));
        let rw = rw(DomId(3));
        let fresh = vec!["/a".to_string()];
        let node = |path: &str, perms: &Vec<Perm>| Node {
            path: path.into(),
            value: None,
            perms: Some(perms.clone()),
        };
        // /a/b inherits /a's; made again with the guest's, it gets them; /a/b/c then
        // inherits those, and /x (not fresh) is always sent.
        let nodes = [
            node("/a", &ro),
            node("/a/b", &ro),
            node("/a/b", &rw),
            node("/a/b/c", &rw),
            node("/x", &ro),
        ];
        let sent: Vec<String> = ops(&fresh, &nodes)
            .iter()
            .filter_map(|o| match o {
                StoreOp::SetPerms(p, perms) => Some(format!("{p} {}", perms.len())),
                _ => None,
            })
            .collect();
        assert_eq!(sent, ["/a 2", "/a/b 1", "/x 2"]);
        assert!(is_within("/a/b", "/a") && is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
    }

    #[test]
    fn post_build_has_console_and_vcpus() {
        let b = Built {
            dom: DomId(3),
            max_memkb: 32768,
            target_memkb: 32768,
            videoram_kib: 0,
            store_port: 1,
            store_gfn: 0xfeffc,
            console_port: 2,
            console_gfn: 0xfefff,
            vcpus: 1,
            max_vcpus: 2,
        };
        let nodes = post_build(&b);
        let v = |p: &str| find(&nodes, p).value.clone();
        assert_eq!(
            v("/local/domain/3/store/ring-ref").as_deref(),
            Some("1044476")
        );
        assert_eq!(
            v("/local/domain/3/console/ring-ref").as_deref(),
            Some("1044479")
        );
        assert_eq!(
            v("/local/domain/3/console/type").as_deref(),
            Some("xenconsoled")
        );
        assert_eq!(
            v("/local/domain/3/cpu/0/availability").as_deref(),
            Some("online")
        );
        assert_eq!(
            v("/local/domain/3/cpu/1/availability").as_deref(),
            Some("offline")
        );
        assert_eq!(
            v("/local/domain/0/backend/console/3/0/frontend").as_deref(),
            Some("/local/domain/3/console")
        );
        // libxl's record of the console, which `xl destroy` follows to remove it.
        assert_eq!(
            v("/libxl/3/device/console/0/frontend").as_deref(),
            Some("/local/domain/3/console")
        );
        assert_eq!(
            v("/libxl/3/device/console/0/backend").as_deref(),
            Some("/local/domain/0/backend/console/3/0")
        );
    }
}

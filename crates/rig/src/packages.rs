//! Host tools and the Debian packages that make up the dom0 image.
//!
//! Packages are fetched with `apt-get download` into a cache directory (files already
//! there are reused) and unpacked with `dpkg -x` into one tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What went wrong preparing tools or packages.
#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    /// A command could not be started.
    #[error("could not run {cmd}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A command exited non-zero.
    #[error("{cmd} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Exit status text.
        status: String,
        /// Its last stderr lines.
        stderr: String,
    },
    /// Host tools are missing and this process may not install them.
    #[error("missing host tools: {tools}; install them with: {install}")]
    MissingTools {
        /// The tools not found on PATH.
        tools: String,
        /// The exact command to run.
        install: String,
    },
    /// Debian packages are missing and this process cannot install them.
    #[error(
        "{who} needs the Debian packages {packages}, which are not installed; run:\n    {install}"
    )]
    MissingPackages {
        /// Who needs them (`cargo xtask test`).
        who: String,
        /// The packages missing, space-separated.
        packages: String,
        /// The one command that installs them.
        install: String,
    },
    /// apt printed no download address for a package.
    #[error("apt knows no package {0}; run `apt-get update` or check the name")]
    UnknownPackage(String),
    /// `apt-cache depends linux-image-amd64` named no kernel image package.
    #[error("could not find the kernel package in `apt-cache depends linux-image-amd64`: {0}")]
    NoKernel(String),
    /// A file-system operation failed.
    #[error("{what} {path} failed")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs a command, returning its stdout; failures carry the command line and stderr.
pub fn run(cmd: &mut Command) -> Result<String, PkgError> {
    let line = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|source| PkgError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        return Err(PkgError::Failed {
            cmd: line,
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A program the host needs and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Program name looked up on PATH.
    pub program: &'static str,
    /// Debian package.
    pub package: &'static str,
}

/// Host programs the rig always uses.
pub const HOST_TOOLS: &[Tool] = &[
    Tool {
        program: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Tool {
        program: "timeout",
        package: "coreutils",
    },
    Tool {
        program: "dpkg",
        package: "dpkg",
    },
    Tool {
        program: "apt-get",
        package: "apt",
    },
    Tool {
        program: "as",
        package: "binutils",
    },
    Tool {
        program: "ld",
        package: "binutils",
    },
    Tool {
        program: "strip",
        package: "binutils",
    },
];

/// Whether `program` is an executable file on PATH.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Makes sure every tool is on PATH: installs the missing ones with apt when running as
/// root, otherwise fails with the exact command to run.
pub fn ensure_tools(tools: &[Tool]) -> Result<(), PkgError> {
    let missing: Vec<&Tool> = tools.iter().filter(|t| !on_path(t.program)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut pkgs: Vec<&str> = missing.iter().map(|t| t.package).collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    );
    if !is_root() {
        return Err(PkgError::MissingTools {
            tools: missing
                .iter()
                .map(|t| t.program)
                .collect::<Vec<_>>()
                .join(", "),
            install: format!("sudo {install}"),
        });
    }
    eprintln!("e2e: installing host packages: {}", pkgs.join(" "));
    if apt_lists_empty() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let still: Vec<&str> = tools
        .iter()
        .filter(|t| !on_path(t.program))
        .map(|t| t.program)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(PkgError::MissingTools {
            tools: still.join(", "),
            install,
        })
    }
}

/// Whether the Debian package `name` is installed, as `dpkg-query` reports it.
fn deb_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"install ok installed"))
}

/// What to do about missing Debian packages.
#[derive(Debug)]
pub enum PackagePlan {
    /// Everything is installed.
    Nothing,
    /// Root with apt: `apt-get update`, then install these.
    Install(Vec<String>),
    /// Stop with this error, which names the one command to run.
    Stop(PkgError),
}

/// Decides what [`ensure_packages`] does, from the packages missing, whether this process
/// is root and whether apt-get is on PATH.
pub fn package_plan(who: &str, missing: &[&str], root: bool, apt: bool) -> PackagePlan {
    if missing.is_empty() {
        return PackagePlan::Nothing;
    }
    if root && apt {
        return PackagePlan::Install(missing.iter().map(|p| (*p).to_owned()).collect());
    }
    let list = missing.join(" ");
    let install = if root {
        format!("apt-get update && apt-get install -y --no-install-recommends {list}")
    } else {
        format!("sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends {list}'")
    };
    PackagePlan::Stop(PkgError::MissingPackages {
        who: who.to_owned(),
        packages: list,
        install,
    })
}

/// Makes sure the Debian packages `pkgs` are installed before `who` runs anything: as root
/// with apt, runs `apt-get update` once and installs the missing ones
/// (`--no-install-recommends`); otherwise stops at once with the one command to run.
pub fn ensure_packages(pkgs: &[&str], who: &str) -> Result<(), PkgError> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !deb_installed(p)).collect();
    match package_plan(who, &missing, is_root(), on_path("apt-get")) {
        PackagePlan::Nothing => Ok(()),
        PackagePlan::Stop(e) => Err(e),
        PackagePlan::Install(list) => {
            eprintln!("{who}: installing Debian packages: {}", list.join(" "));
            run(Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&list)
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
            let still: Vec<&str> = pkgs.iter().copied().filter(|p| !deb_installed(p)).collect();
            match package_plan(who, &still, false, false) {
                PackagePlan::Stop(e) => Err(e),
                _ => Ok(()),
            }
        }
    }
}

fn is_root() -> bool {
    // The effective uid is in /proc/self/status ("Uid: real effective saved fs").
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Whether apt has no package lists yet (a fresh machine before `apt-get update`).
fn apt_lists_empty() -> bool {
    std::fs::read_dir("/var/lib/apt/lists").map_or(true, |entries| {
        !entries.filter_map(Result::ok).any(|e| {
            e.file_name().to_string_lossy().ends_with("Packages.lz4")
                || e.file_name().to_string_lossy().contains("_Packages")
        })
    })
}

/// The dom0 packages (the kernel package is added by [`image_packages`]).
pub const DOM0_PACKAGES: &[&str] = &[
    "xen-hypervisor-4.17-amd64",
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxenmisc4.17",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenhypfs1",
    "libxenstore4",
    "libxentoolcore1",
    "libxentoollog1",
    "libyajl2",
    "libgcc-s1",
    "libc6",
    "liblzma5",
    "libuuid1",
    "zlib1g",
    "libzstd1",
    "libext2fs2",
    "libncurses6",
    "libtinfo6",
    "busybox-static",
    // GRUB built for Xen PVH (firmware = "pvgrub"); only its image is used.
    "grub-xen-host",
    // What Xen's hotplug scripts (/etc/xen/scripts, in xen-utils-common) run: bash, losetup
    // (package mount), flock (util-linux), ip and bridge (iproute2); and mke2fs/debugfs
    // (e2fsprogs) for the disk images of the devices step. Their libraries follow.
    "bash",
    "mount",
    "util-linux",
    "iproute2",
    "e2fsprogs",
    "libsmartcols1",
    "libblkid1",
    "libcom-err2",
    "libss2",
    "libbpf1",
    "libelf1",
    "libmnl0",
    "libbsd0",
    "libmd0",
    "libcap2",
    // pygrub (bootloader = "pygrub"): Python 3.11 and what pygrub imports beyond its core
    // (ctypes needs libffi, curses needs ncursesw and a terminfo entry for TERM=vt100).
    "python3-minimal",
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libexpat1",
    "libffi8",
    "libncursesw6",
    "ncurses-base",
    // The device model of HVM guests and of qdisk disks (/usr/libexec/xen-qemu-system-i386),
    // the firmware and data it opens at start (SeaBIOS, the NIC option ROMs, QEMU's
    // keymaps), and the libraries of the QEMU binary: its DT_NEEDED closure, from
    // `readelf -d` and `ldd` of the unpacked binary (the image build fails naming any
    // library still missing).
    "qemu-system-xen",
    "qemu-system-data",
    "seabios",
    "ipxe-qemu",
    "libfdt1",
    "libglib2.0-0",
    "libpcre2-8-0",
    "libjpeg62-turbo",
    "libpixman-1-0",
    "libspice-server1",
    "libusb-1.0-0",
    "libudev1",
    "libopus0",
    "liborc-0.4-0",
    "libgstreamer1.0-0",
    "libgstreamer-plugins-base1.0-0",
    "libdw1",
    "libunwind8",
    "libbz2-1.0",
    "liblz4-1",
    "libsasl2-2",
    "libssl3",
    "libstdc++6",
];

/// Picks the kernel image package out of `apt-cache depends linux-image-amd64` output.
pub fn kernel_from_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64") && !p.contains('<'))
        .map(str::to_owned)
}

/// The kernel release (`6.1.0-57-amd64`) of a kernel image package name.
pub fn kernel_release(package: &str) -> Option<&str> {
    package
        .strip_prefix("linux-image-")
        .filter(|r| !r.is_empty())
}

/// The full package list: [`DOM0_PACKAGES`] plus the current kernel.
pub fn image_packages() -> Result<Vec<String>, PkgError> {
    if apt_lists_empty() {
        if !is_root() {
            return Err(PkgError::Failed {
                cmd: "apt-cache".into(),
                status: "no package lists".into(),
                stderr: "run `sudo apt-get update` first".into(),
            });
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
    }
    let depends = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let kernel =
        kernel_from_depends(&depends).ok_or_else(|| PkgError::NoKernel(depends.clone()))?;
    let mut pkgs: Vec<String> = DOM0_PACKAGES.iter().map(|s| (*s).to_owned()).collect();
    pkgs.push(kernel);
    Ok(pkgs)
}

/// One `.deb` apt would download: `'URL' FILENAME SIZE HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebUri {
    /// Download address.
    pub url: String,
    /// File name apt gives it.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
}

/// Parses the output of `apt-get download --print-uris`.
pub fn parse_print_uris(text: &str) -> Vec<DebUri> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix('\'')?;
            let (url, rest) = rest.split_once('\'')?;
            let mut f = rest.split_whitespace();
            let file = f.next()?.to_owned();
            let size = f.next()?.parse().ok()?;
            Some(DebUri {
                url: url.to_owned(),
                file,
                size,
            })
        })
        .collect()
}

/// What [`fetch`] did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The `.deb` files, in package order.
    pub debs: Vec<PathBuf>,
    /// How many were downloaded now (the rest were cached).
    pub downloaded: usize,
}

/// Downloads `packages` into `dir` unless a file of the right name and size is there.
pub fn fetch(packages: &[String], dir: &Path) -> Result<Fetched, PkgError> {
    std::fs::create_dir_all(dir).map_err(|source| PkgError::Io {
        what: "creating",
        path: dir.to_owned(),
        source,
    })?;
    // Ask from an empty directory so apt lists every package, cached or not.
    let probe = dir.join(".probe");
    std::fs::create_dir_all(&probe).map_err(|source| PkgError::Io {
        what: "creating",
        path: probe.clone(),
        source,
    })?;
    let print_uris = || {
        run(Command::new("apt-get")
            .args(["download", "--print-uris"])
            .args(packages)
            .current_dir(&probe))
    };
    let uris_text = match print_uris() {
        // Package lists older than what is installed: apt offers the installed version
        // (a point release or security update it no longer lists) and finds no source for
        // it. Fresh lists name one it can download.
        Err(e) if is_root() && stale_lists(&e) => {
            eprintln!("e2e: apt's package lists are stale ({e}); running apt-get update");
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            print_uris()?
        }
        r => r?,
    };
    let uris = parse_print_uris(&uris_text);
    let mut debs = Vec::new();
    let mut missing = Vec::new();
    for pkg in packages {
        let prefix = format!("{pkg}_");
        let Some(u) = uris.iter().find(|u| u.file.starts_with(&prefix)) else {
            return Err(PkgError::UnknownPackage(pkg.clone()));
        };
        let path = dir.join(&u.file);
        let cached = std::fs::metadata(&path).is_ok_and(|m| m.len() == u.size);
        if !cached {
            missing.push(pkg.clone());
        }
        debs.push(path);
    }
    if !missing.is_empty() {
        let mut cmd = Command::new("apt-get");
        cmd.arg("download").arg("-q");
        if is_root() {
            // apt drops to the _apt user for downloads, which may not write to the cache.
            cmd.args(["-o", "APT::Sandbox::User=root"]);
        }
        run(cmd.args(&missing).current_dir(dir))?;
    }
    for d in &debs {
        if !d.is_file() {
            return Err(PkgError::Io {
                what: "downloading",
                path: d.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "apt did not write it"),
            });
        }
    }
    Ok(Fetched {
        downloaded: missing.len(),
        debs,
    })
}

/// Whether apt failed because its lists name no source for a version it wants (the
/// installed one, newer than the lists).
fn stale_lists(e: &PkgError) -> bool {
    matches!(e, PkgError::Failed { stderr, .. } if stderr.contains("Can't find a source to download version"))
}

/// Unpacks every `.deb` into `root` with `dpkg -x`, replacing what was there.
pub fn unpack(debs: &[PathBuf], root: &Path) -> Result<(), PkgError> {
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|source| PkgError::Io {
            what: "removing",
            path: root.to_owned(),
            source,
        })?;
    }
    std::fs::create_dir_all(root).map_err(|source| PkgError::Io {
        what: "creating",
        path: root.to_owned(),
        source,
    })?;
    for deb in debs {
        run(Command::new("dpkg").arg("-x").arg(deb).arg(root))?;
    }
    Ok(())
}

/// Unpacks `debs` at `CACHE/root` unless `CACHE/root.stamp` lists the same `.deb` files and
/// the tree is there; says whether it unpacked.
pub fn unpack_cached(debs: &[PathBuf], cache: &Path) -> Result<(PathBuf, bool), PkgError> {
    let root = cache.join("root");
    let stamp_path = cache.join("root.stamp");
    let stamp: String = debs
        .iter()
        .filter_map(|d| {
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned() + "\n")
        })
        .collect();
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) && root.is_dir() {
        return Ok((root, false));
    }
    let _ = std::fs::remove_file(&stamp_path);
    unpack(debs, &root)?;
    std::fs::write(&stamp_path, &stamp).map_err(|source| PkgError::Io {
        what: "writing",
        path: stamp_path.clone(),
        source,
    })?;
    Ok((root, true))
}

/// The dom0 packages ([`image_packages`]) fetched into `CACHE/debs` and unpacked at
/// `CACHE/root` as `rig::run` keeps them ([`unpack_cached`]). For tests that run the dom0's
/// own tools, such as pygrub.
pub fn unpacked_dom0_root(cache: &Path) -> Result<PathBuf, PkgError> {
    let fetched = fetch(&image_packages()?, &cache.join("debs"))?;
    Ok(unpack_cached(&fetched.debs, cache)?.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_missing_source_counts_as_stale_lists() {
        use super::{stale_lists, PkgError};
        let failed = |stderr: &str| PkgError::Failed {
            cmd: "apt-get download --print-uris libpcre2-8-0".into(),
            status: "exit status: 100".into(),
            stderr: stderr.into(),
        };
        assert!(stale_lists(&failed(
            "E: Can't find a source to download version '10.42-1+deb12u1' of 'libpcre2-8-0:amd64'"
        )));
        assert!(!stale_lists(&failed(
            "E: Unable to locate package no-such-package"
        )));
        assert!(!stale_lists(&PkgError::UnknownPackage("x".into())));
    }

    #[test]
    fn package_plan_installs_as_root_and_otherwise_names_one_command() {
        use super::{package_plan, PackagePlan};
        assert!(matches!(
            package_plan("t", &[], false, false),
            PackagePlan::Nothing
        ));
        assert!(matches!(
            package_plan("t", &["shellcheck", "zstd"], true, true),
            PackagePlan::Install(list) if list == ["shellcheck", "zstd"]
        ));
        let PackagePlan::Stop(e) =
            package_plan("cargo xtask test", &["shellcheck", "zstd"], false, true)
        else {
            panic!("a user who is not root must be stopped");
        };
        assert_eq!(
            e.to_string(),
            "cargo xtask test needs the Debian packages shellcheck zstd, which are not installed; \
             run:\n    sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends \
             shellcheck zstd'"
        );
        let PackagePlan::Stop(e) = package_plan("t", &["zstd"], true, false) else {
            panic!("root without apt-get must be stopped");
        };
        assert!(e.to_string().ends_with(
            "run:\n    apt-get update && apt-get install -y --no-install-recommends zstd"
        ));
    }

    use super::*;

    #[test]
    fn finds_kernel_package() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
        assert_eq!(
            kernel_from_depends(text).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(kernel_from_depends("linux-image-amd64\n"), None);
        assert_eq!(
            kernel_from_depends("x\n  Depends: <linux-image-6.1.0-57-amd64>\n  Depends: linux-image-6.1.0-58-amd64\n")
                .as_deref(),
            Some("linux-image-6.1.0-58-amd64")
        );
        assert_eq!(
            kernel_release("linux-image-6.1.0-57-amd64"),
            Some("6.1.0-57-amd64")
        );
        assert_eq!(kernel_release("linux-image-"), None);
    }

    #[test]
    fn parses_apt_uris() {
        let text = "'http://deb.example/pool/b/busybox_1.35_amd64.deb' busybox-static_1%3a1.35_amd64.deb 928188 SHA256:ab\n\
                    garbage\n";
        let uris = parse_print_uris(text);
        assert_eq!(
            uris,
            [DebUri {
                url: "http://deb.example/pool/b/busybox_1.35_amd64.deb".into(),
                file: "busybox-static_1%3a1.35_amd64.deb".into(),
                size: 928_188
            }]
        );
    }

    #[test]
    fn finds_tools_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("surely-no-such-program-rxl"));
    }
}

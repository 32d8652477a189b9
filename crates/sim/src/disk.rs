//! The on-disk layer: the lock, atomic file replacement, the small host state file, the
//! per-domain records and the change log.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use xen_host::{E820Entry, GrantEntryV1};

use crate::SimError;

/// Change log entries per segment file.
pub(crate) const LOG_SEGMENT_LEN: u64 = 1024;
/// Segments kept; older ones are deleted. A watcher more than
/// `LOG_SEGMENT_LEN * LOG_KEEP_SEGMENTS` changes behind gets each of its watches fired
/// once instead of the events it missed.
pub(crate) const LOG_KEEP_SEGMENTS: u64 = 8;

/// Wrap an I/O error with the path it concerns.
pub(crate) fn io_err(path: &Path, source: io::Error) -> SimError {
    SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn remove_if_present(path: &Path) -> Result<(), SimError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Replace `path` with `data` so that no reader ever sees a partial file: write
/// `.NAME.new`, rename it to `.NAME.ready` (now known complete), remove the old file,
/// rename `.NAME.ready` into place. Readers fall back to `.NAME.ready` when the file is
/// missing, which only happens if a process died between the last two steps.
///
/// The old file is removed rather than renamed over because ext4 flushes a file's data
/// when a rename replaces another file, which costs milliseconds per write.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SimError> {
    let new = side_path(path, "new");
    let ready = side_path(path, "ready");
    let mut f = File::create(&new).map_err(|e| io_err(&new, e))?;
    f.write_all(data).map_err(|e| io_err(&new, e))?;
    drop(f);
    fs::rename(&new, &ready).map_err(|e| io_err(&ready, e))?;
    remove_if_present(path)?;
    fs::rename(&ready, path).map_err(|e| io_err(path, e))
}

/// Remove a file written by [`write_atomic`] (nothing to do when absent).
pub(crate) fn remove_atomic(path: &Path) -> Result<(), SimError> {
    remove_if_present(path)?;
    remove_if_present(&side_path(path, "ready"))?;
    remove_if_present(&side_path(path, "new"))
}

/// Whether a file written by [`write_atomic`] exists.
pub(crate) fn exists_atomic(path: &Path) -> bool {
    path.exists() || side_path(path, "ready").exists()
}

fn read_plain(path: &Path) -> Result<Option<Vec<u8>>, SimError> {
    match fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Read a file written by [`write_atomic`]; `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, SimError> {
    match read_plain(path)? {
        Some(d) => Ok(Some(d)),
        None => read_plain(&side_path(path, "ready")),
    }
}

/// Read and parse a JSON file; `None` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, SimError> {
    match read_opt(path)? {
        None => Ok(None),
        Some(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| SimError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
    }
}

/// Serialize `value` as JSON and replace `path` with it atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SimError> {
    let data = serde_json::to_vec(value).map_err(|e| SimError::Corrupt {
        path: path.to_path_buf(),
        message: format!("cannot serialize: {e}"),
    })?;
    write_atomic(path, &data)
}

/// An exclusive `flock` on `DIR/lock`, released on drop.
pub(crate) struct HostLock {
    _lock: Flock<File>,
}

impl HostLock {
    /// Block until this process holds the host lock.
    pub(crate) fn acquire(dir: &Path) -> Result<HostLock, SimError> {
        Self::take(dir, FlockArg::LockExclusive)
    }

    /// Block until this process shares the host lock with other readers.
    pub(crate) fn acquire_shared(dir: &Path) -> Result<HostLock, SimError> {
        Self::take(dir, FlockArg::LockShared)
    }

    fn take(dir: &Path, mode: FlockArg) -> Result<HostLock, SimError> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let lock = Flock::lock(file, mode)
            .map_err(|(_, errno)| io_err(&path, io::Error::from_raw_os_error(errno as i32)))?;
        Ok(HostLock { _lock: lock })
    }
}

/// The small mutable host state (`DIR/state.json`), rewritten by every operation that
/// changes it. Its size does not depend on the number of domains.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostState {
    /// Sequence number of the last change log entry.
    pub seq: u64,
    /// xenstore generation: bumped on every node modification.
    pub xs_gen: u64,
    /// The last domain id handed out by createdomain.
    pub rover: u16,
    /// Host pages in use: every domain's `tot_pages` plus paging pools.
    pub used_pages: u64,
    /// Pages claimed and not yet allocated, over all domains.
    pub outstanding_pages: u64,
    /// Counter making every created domain distinguishable from a later one with the
    /// same id.
    pub next_instance: u64,
    /// Machine frames handed out so far to PV domains (the next one is
    /// `MFN_BASE + next_mfn`; frames are never reused).
    #[serde(default)]
    pub next_mfn: u64,
}

impl HostState {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub(crate) fn load(dir: &Path) -> Result<HostState, SimError> {
        let path = Self::path(dir);
        read_json(&path)?.ok_or_else(|| SimError::Corrupt {
            path,
            message: "missing host state".into(),
        })
    }

    /// Write the state. The first write creates the file with [`write_atomic`]; later
    /// ones overwrite it in place with one write of [`STATE_RECORD_LEN`] bytes (the JSON
    /// padded with spaces), which no reader can see half done because every reader holds
    /// the host lock, and which a dying process cannot leave half done because a write
    /// within one page is copied whole. This saves the create, unlink and two renames
    /// per operation that dominate its cost on ext4.
    pub(crate) fn store(&self, dir: &Path) -> Result<(), SimError> {
        let path = Self::path(dir);
        let mut data = serde_json::to_vec(self).map_err(|e| SimError::Corrupt {
            path: path.clone(),
            message: format!("cannot serialize: {e}"),
        })?;
        if data.len() >= STATE_RECORD_LEN {
            return Err(SimError::Corrupt {
                path,
                message: format!("state record of {} bytes is too long", data.len()),
            });
        }
        data.resize(STATE_RECORD_LEN - 1, b' ');
        data.push(b'\n');
        match OpenOptions::new().write(true).open(&path) {
            Ok(f) => {
                use std::os::unix::fs::FileExt;
                f.write_all_at(&data, 0).map_err(|e| io_err(&path, e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => write_atomic(&path, &data),
            Err(e) => Err(io_err(&path, e)),
        }
    }
}

/// Size of the state record on disk.
pub(crate) const STATE_RECORD_LEN: usize = 512;

/// One saved HVM context record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HvmRecord {
    pub typecode: u16,
    pub instance: u16,
    /// Record body as hex.
    pub data: String,
}

/// A guest-side event waiting for the domain to be unpaused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PendingShutdown {
    Poweroff,
    Reboot,
    Crash,
    Watchdog,
}

/// A domain as the hypervisor and xenstored know it (`DIR/domains/<id>.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomRecord {
    pub domid: u16,
    pub instance: u64,
    pub handle: [u8; 16],
    pub ssidref: u32,
    pub flags: u32,
    pub max_vcpus: u32,
    pub online_vcpus: u32,
    pub max_evtchn_port: u32,
    pub max_grant_frames: u32,
    /// Controller pause count (createdomain leaves it at 1).
    pub pause_count: u32,
    /// Unpaused at least once.
    pub started: bool,
    pub shutdown_code: Option<u32>,
    pub dying: bool,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub paging_pool_pages: u64,
    /// Wall time spent runnable before `run_since_ns`.
    pub run_ns: u64,
    /// When the domain last became runnable (unix ns), while it is.
    pub run_since_ns: Option<u64>,
    pub evtchns: BTreeMap<u32, u16>,
    pub hvm_params: BTreeMap<u32, u64>,
    pub hvm_records: Vec<HvmRecord>,
    pub memory_map: Vec<E820Entry>,
    pub tsc_mode: Option<u32>,
    pub grants: BTreeMap<u32, GrantEntryV1>,
    /// Populated gfn ranges `[start, end)`, sorted and merged.
    pub populated: Vec<(u64, u64)>,
    /// xenstored's view: the ring gfn and port given to introduce.
    pub introduced: Option<(u64, u32)>,
    pub ignore_shutdown: bool,
    pub pending: Option<PendingShutdown>,
    /// The triggers `sendtrigger` delivered, in order: `(XEN_DOMCTL_SENDTRIGGER_*, vcpu)`.
    #[serde(default)]
    pub triggers: Vec<(u32, u32)>,
    /// A PV domain's state (absent for HVM domains and before the first PV operation).
    #[serde(default)]
    pub pv: PvState,
}

/// What Xen knows of a PV domain beyond the common record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PvState {
    /// `XEN_DOMCTL_set_address_size`, once given.
    pub address_size: Option<u32>,
    /// The P2M: runs `(first gpfn, first mfn, frames)`, sorted by gpfn, each run
    /// contiguous in both (the M2P is the same runs read the other way).
    pub extents: Vec<(u64, u64, u64)>,
    /// The pinned top-level page table.
    pub pinned_l4: Option<u64>,
    /// Every page-table frame of the pinned tree (sorted): Xen refuses writable
    /// mappings of them.
    pub table_frames: Vec<u64>,
    /// The frame `hypercall_init` filled.
    pub hypercall_page: Option<u64>,
    /// The shared_info frame (allocated from the host's frames at first use).
    pub shared_info: Option<u64>,
    /// vCPU contexts set with `setvcpucontext`.
    pub vcpus: BTreeMap<u32, xen_host::PvVcpuContext>,
    /// What vCPU 0's first instructions would hit, judged when its context was set from
    /// the frames that handle wrote (`None`: nothing).
    pub entry_fault: Option<String>,
}

impl PvState {
    /// The gpfn of `mfn` when the domain owns it (the M2P).
    pub(crate) fn m2p(&self, mfn: u64) -> Option<u64> {
        self.extents
            .iter()
            .find(|&&(_, m, n)| mfn >= m && mfn - m < n)
            .map(|&(g, m, _)| g + (mfn - m))
    }

    /// Whether the domain owns frame `mfn` (its RAM or its shared_info frame).
    pub(crate) fn owns(&self, mfn: u64) -> bool {
        self.m2p(mfn).is_some() || self.shared_info == Some(mfn)
    }

    /// Record that gpfns `[gpfn, gpfn + n)` are backed by mfns `[mfn, mfn + n)`, merging
    /// with the previous run when both continue it.
    pub(crate) fn add_extent(&mut self, gpfn: u64, mfn: u64, n: u64) {
        let idx = self.extents.partition_point(|&(g, _, _)| g < gpfn);
        if let Some(prev) = idx.checked_sub(1).and_then(|i| self.extents.get_mut(i)) {
            if prev.0 + prev.2 == gpfn && prev.1 + prev.2 == mfn {
                prev.2 += n;
                return;
            }
        }
        self.extents.insert(idx, (gpfn, mfn, n));
    }
}

impl DomRecord {
    pub(crate) fn is_hvm(&self) -> bool {
        self.flags & xen_host::cdf::HVM != 0
    }

    /// Runnable: unpaused, alive and started.
    pub(crate) fn runnable(&self) -> bool {
        self.started && self.pause_count == 0 && self.shutdown_code.is_none() && !self.dying
    }

    /// Stop the run clock (fold the running time into `run_ns`).
    pub(crate) fn stop_clock(&mut self, now: u64) {
        if let Some(since) = self.run_since_ns.take() {
            self.run_ns = self.run_ns.saturating_add(now.saturating_sub(since));
        }
    }

    /// Start the run clock if the domain is runnable.
    pub(crate) fn start_clock(&mut self, now: u64) {
        if self.runnable() && self.run_since_ns.is_none() {
            self.run_since_ns = Some(now);
        }
    }

    /// Total runnable wall time up to `now`.
    pub(crate) fn run_total(&self, now: u64) -> u64 {
        let extra = self.run_since_ns.map_or(0, |s| now.saturating_sub(s));
        self.run_ns.saturating_add(extra)
    }

    /// Whether `gfn` lies in a populated range.
    pub(crate) fn is_populated(&self, gfn: u64) -> bool {
        let idx = self.populated.partition_point(|&(_, end)| end <= gfn);
        self.populated
            .get(idx)
            .is_some_and(|&(start, _)| start <= gfn)
    }

    /// Whether any gfn of `[start, end)` is populated.
    pub(crate) fn overlaps(&self, start: u64, end: u64) -> bool {
        let idx = self.populated.partition_point(|&(_, e)| e <= start);
        self.populated.get(idx).is_some_and(|&(s, _)| s < end)
    }

    /// Add `[start, end)` to the populated ranges, merging neighbours.
    pub(crate) fn add_populated(&mut self, start: u64, end: u64) {
        let idx = self.populated.partition_point(|&(_, e)| e < start);
        let mut new_start = start;
        let mut new_end = end;
        let mut last = idx;
        while let Some(&(s, e)) = self.populated.get(last) {
            if s > new_end {
                break;
            }
            new_start = new_start.min(s);
            new_end = new_end.max(e);
            last += 1;
        }
        self.populated
            .splice(idx..last, std::iter::once((new_start, new_end)));
    }
}

/// The path of a domain's record.
pub(crate) fn dom_path(dir: &Path, domid: u16) -> PathBuf {
    dir.join("domains").join(format!("{domid}.json"))
}

/// Read a domain record; `None` when no such domain exists.
pub(crate) fn load_dom(dir: &Path, domid: u16) -> Result<Option<DomRecord>, SimError> {
    read_json(&dom_path(dir, domid))
}

/// Write a domain record.
pub(crate) fn store_dom(dir: &Path, dom: &DomRecord) -> Result<(), SimError> {
    write_json(&dom_path(dir, dom.domid), dom)
}

/// Remove a domain record.
pub(crate) fn remove_dom(dir: &Path, domid: u16) -> Result<(), SimError> {
    remove_atomic(&dom_path(dir, domid))
}

/// The ids of every domain record, sorted.
pub(crate) fn dom_ids(dir: &Path) -> Result<Vec<u16>, SimError> {
    let path = dir.join("domains");
    let mut ids = Vec::new();
    for entry in fs::read_dir(&path).map_err(|e| io_err(&path, e))? {
        let entry = entry.map_err(|e| io_err(&path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let base = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".ready"))
            .unwrap_or(&name);
        if let Some(id) = base
            .strip_suffix(".json")
            .and_then(|s| s.parse::<u16>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// What a change log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// A node was written, created or had its permissions changed.
    Write,
    /// A node and its subtree were removed.
    Remove,
    /// A special event (`@introduceDomain`, `@releaseDomain`).
    Special,
}

impl ChangeKind {
    fn letter(self) -> char {
        match self {
            ChangeKind::Write => 'w',
            ChangeKind::Remove => 'r',
            ChangeKind::Special => 's',
        }
    }

    fn from_letter(c: &str) -> Option<ChangeKind> {
        match c {
            "w" => Some(ChangeKind::Write),
            "r" => Some(ChangeKind::Remove),
            "s" => Some(ChangeKind::Special),
            _ => None,
        }
    }
}

/// One change log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    pub path: String,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join("log").join(format!("{segment:012}.log"))
}

/// Append changes (already numbered, consecutive) to the log, rotating segments.
pub(crate) fn append_changes(dir: &Path, changes: &[Change]) -> Result<(), SimError> {
    let mut by_segment: BTreeMap<u64, String> = BTreeMap::new();
    for c in changes {
        let line = format!("{} {} {}\n", c.seq, c.kind.letter(), c.path);
        by_segment
            .entry(c.seq / LOG_SEGMENT_LEN)
            .or_default()
            .push_str(&line);
    }
    for (segment, text) in by_segment {
        let path = segment_path(dir, segment);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| io_err(&path, e))?;
        if let Some(old) = segment.checked_sub(LOG_KEEP_SEGMENTS) {
            remove_if_present(&segment_path(dir, old))?;
        }
    }
    Ok(())
}

/// Changes read back from the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The entries with `after < seq <= upto` the log still holds, in order.
    pub entries: Vec<Change>,
    /// Some entries of the range were already deleted.
    pub lost: bool,
}

/// The changes with `after < seq <= upto`.
pub(crate) fn read_changes(dir: &Path, after: u64, upto: u64) -> Result<Changes, SimError> {
    let mut out = Changes::default();
    if upto <= after {
        return Ok(out);
    }
    let first = after.saturating_add(1) / LOG_SEGMENT_LEN;
    let last = upto / LOG_SEGMENT_LEN;
    for segment in first..=last {
        let path = segment_path(dir, segment);
        let Some(data) = read_plain(&path)? else {
            out.lost = true;
            continue;
        };
        let text = String::from_utf8_lossy(&data);
        for line in text.lines() {
            let mut parts = line.splitn(3, ' ');
            let (Some(seq), Some(kind), Some(p)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(seq), Some(kind)) = (seq.parse::<u64>(), ChangeKind::from_letter(kind)) else {
                continue;
            };
            if seq > after && seq <= upto {
                out.entries.push(Change {
                    seq,
                    kind,
                    path: p.to_string(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom() -> DomRecord {
        DomRecord {
            domid: 1,
            instance: 0,
            handle: [0; 16],
            ssidref: 0,
            flags: 0,
            max_vcpus: 1,
            online_vcpus: 0,
            max_evtchn_port: 1023,
            max_grant_frames: 64,
            pause_count: 1,
            ..DomRecord::default()
        }
    }

    #[test]
    fn atomic_files_survive_a_death_between_steps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("3.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_opt(&p).unwrap().unwrap(), b"two");
        // Died after removing the old file, before the last rename.
        fs::write(side_path(&p, "ready"), b"three").unwrap();
        fs::remove_file(&p).unwrap();
        assert!(exists_atomic(&p));
        assert_eq!(read_opt(&p).unwrap().unwrap(), b"three");
        assert_eq!(dom_ids_in(dir.path()), vec![3]);
        // Died while writing: the partial file is ignored.
        fs::write(side_path(&p, "new"), b"partial").unwrap();
        assert_eq!(read_opt(&p).unwrap().unwrap(), b"three");
        write_atomic(&p, b"four").unwrap();
        assert_eq!(read_opt(&p).unwrap().unwrap(), b"four");
        remove_atomic(&p).unwrap();
        assert!(!exists_atomic(&p));
        assert_eq!(read_opt(&p).unwrap(), None);
        assert_eq!(dom_ids_in(dir.path()), Vec::<u16>::new());
    }

    fn dom_ids_in(dir: &Path) -> Vec<u16> {
        let d = dir.join("domains");
        fs::create_dir_all(&d).unwrap();
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                fs::copy(e.path(), d.join(e.file_name())).unwrap();
            }
        }
        let ids = dom_ids(dir).unwrap();
        fs::remove_dir_all(&d).unwrap();
        ids
    }

    #[test]
    fn state_record_is_fixed_size_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = HostState {
            seq: u64::MAX,
            xs_gen: u64::MAX,
            rover: u16::MAX,
            used_pages: u64::MAX,
            outstanding_pages: u64::MAX,
            next_instance: u64::MAX,
            next_mfn: u64::MAX,
        };
        st.store(dir.path()).unwrap();
        assert_eq!(HostState::load(dir.path()).unwrap(), st);
        st = HostState::default();
        st.store(dir.path()).unwrap();
        assert_eq!(HostState::load(dir.path()).unwrap(), st);
        let len = fs::metadata(HostState::path(dir.path())).unwrap().len();
        assert_eq!(len, STATE_RECORD_LEN as u64);
    }

    #[test]
    fn populated_ranges_merge() {
        let mut d = dom();
        d.add_populated(10, 20);
        d.add_populated(30, 40);
        assert_eq!(d.populated, vec![(10, 20), (30, 40)]);
        d.add_populated(20, 30);
        assert_eq!(d.populated, vec![(10, 40)]);
        d.add_populated(0, 5);
        d.add_populated(50, 51);
        assert_eq!(d.populated, vec![(0, 5), (10, 40), (50, 51)]);
        assert!(d.is_populated(0) && d.is_populated(39) && d.is_populated(50));
        assert!(!d.is_populated(5) && !d.is_populated(40) && !d.is_populated(51));
        assert!(d.overlaps(4, 6) && !d.overlaps(5, 10) && d.overlaps(0, 100));
    }

    #[test]
    fn change_log_round_trips_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("log")).unwrap();
        let changes: Vec<Change> = (1..=LOG_SEGMENT_LEN + 5)
            .map(|seq| Change {
                seq,
                kind: if seq % 2 == 0 {
                    ChangeKind::Write
                } else {
                    ChangeKind::Remove
                },
                path: format!("/a/{seq}"),
            })
            .collect();
        append_changes(dir.path(), &changes).unwrap();
        let got = read_changes(dir.path(), LOG_SEGMENT_LEN - 2, LOG_SEGMENT_LEN + 1)
            .unwrap()
            .entries;
        let seqs: Vec<u64> = got.iter().map(|c| c.seq).collect();
        assert_eq!(
            seqs,
            vec![LOG_SEGMENT_LEN - 1, LOG_SEGMENT_LEN, LOG_SEGMENT_LEN + 1]
        );
        assert_eq!(got[1].kind, ChangeKind::Write);
        assert_eq!(got[1].path, format!("/a/{LOG_SEGMENT_LEN}"));
    }

    #[test]
    fn old_log_segments_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("log")).unwrap();
        for seg in 0..=LOG_KEEP_SEGMENTS {
            let c = Change {
                seq: seg * LOG_SEGMENT_LEN + 1,
                kind: ChangeKind::Special,
                path: "@releaseDomain".into(),
            };
            append_changes(dir.path(), &[c]).unwrap();
        }
        assert!(!segment_path(dir.path(), 0).exists());
        assert!(segment_path(dir.path(), 1).exists());
        let got = read_changes(dir.path(), 0, 2).unwrap();
        assert!(got.lost && got.entries.is_empty());
        let got = read_changes(dir.path(), LOG_SEGMENT_LEN, LOG_SEGMENT_LEN + 1).unwrap();
        assert!(!got.lost && got.entries.len() == 1);
    }
}

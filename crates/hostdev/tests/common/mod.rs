//! Shared by the privileged tests: the privilege gate, a simulated xenstore, a fallback
//! runner that records what reaches it, and reading back what a run left.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devices::hotplug::{Hotplug, HotplugCommand, HotplugError, HotplugRun};
use xen_host::{Store, TxId};

/// Whether a privileged test may run. When it may not (not root, or `missing` names a
/// missing kernel feature), it fails the test, unless `RXL_SKIP_PRIVILEGED=1`, in which
/// case it prints why and the test returns.
pub fn privileged(test: &str, missing: Option<String>) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("it needs root".to_owned())
    } else {
        missing
    };
    let Some(why) = why else {
        return true;
    };
    if std::env::var("RXL_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        eprintln!("{test}: skipped (RXL_SKIP_PRIVILEGED=1): {why}");
        false
    } else {
        panic!("{test}: {why}; set RXL_SKIP_PRIVILEGED=1 to skip the privileged tests");
    }
}

/// A simulated host's xenstore in a fresh directory.
pub struct Xs {
    pub store: Arc<dyn Store + Send + Sync>,
    pub dir: tempfile::TempDir,
}

impl Xs {
    pub fn new() -> Xs {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = sim::SimHost::create(&dir.path().join("sim"), sim::HostConfig::default())
            .expect("simulated host");
        Xs {
            store: Arc::new(host),
            dir,
        }
    }

    pub fn write(&self, path: &str, value: &str) {
        self.store
            .write(TxId::NONE, path, value.as_bytes())
            .expect("xenstore write");
    }

    pub fn rm_all(&self, path: &str) {
        self.store.rm(TxId::NONE, path).expect("xenstore rm");
    }

    pub fn read(&self, path: &str) -> Option<String> {
        xen_host::read_string(&*self.store, TxId::NONE, path).expect("xenstore read")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("hotplug.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

/// A fallback runner that records the commands it gets and succeeds.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<String>>>);

impl Recorder {
    pub fn seen(&self) -> Vec<String> {
        self.0.lock().expect("recorder").clone()
    }
}

impl Hotplug for Recorder {
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        _timeout: Duration,
    ) -> Result<HotplugRun, HotplugError> {
        self.0.lock().expect("recorder").push(cmd.to_string());
        Ok(HotplugRun {
            command: cmd.clone(),
            exit_code: Some(0),
            signal: None,
            timed_out: false,
            log: log.to_owned(),
            elapsed: Duration::ZERO,
        })
    }

    fn name(&self) -> &'static str {
        "recorder"
    }
}

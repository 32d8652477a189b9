//! `rxl kernel-cache list|clear`: the cache of decoded kernels (see `pvh::cache`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::backend::{kernel_cache_dir, read_host_conf};
use crate::cli::KernelCacheCommand;
use crate::report::{out, print_json};

/// `rxl kernel-cache ...`.
pub fn run(sim: Option<&Path>, cmd: &KernelCacheCommand) -> anyhow::Result<ExitCode> {
    let conf = read_host_conf(sim, false)?;
    let max_bytes = conf.rxl.kernel_cache_max_mib.saturating_mul(1 << 20);
    let cache = match kernel_cache_dir(sim, &conf) {
        Some(dir) => Some(pvh::KernelCache::open(&dir, max_bytes)?),
        None => None,
    };
    match cmd {
        KernelCacheCommand::List { json } => {
            let entries = match &cache {
                Some(c) => c.list()?,
                None => Vec::new(),
            };
            if *json {
                print_json(&json!({
                    "dir": cache.as_ref().map(|c| c.dir().display().to_string()),
                    "max_bytes": max_bytes,
                    "entries": entries,
                }));
                return Ok(ExitCode::SUCCESS);
            }
            let Some(c) = &cache else {
                out(format_args!(
                    "the kernel cache is off (rxl.conf: kernel_cache = \"off\")\n"
                ));
                return Ok(ExitCode::SUCCESS);
            };
            let total: u64 = entries.iter().map(|e| e.size).sum();
            let mut text = format!(
                "{}: {} entries, {:.1} of {} MiB\n",
                c.dir().display(),
                entries.len(),
                mib(total),
                conf.rxl.kernel_cache_max_mib
            );
            if !entries.is_empty() {
                text.push_str(&format!(
                    "{:<64} {:>10} {:<20}\n",
                    "HASH", "MIB", "LAST USE"
                ));
            }
            for e in &entries {
                text.push_str(&format!(
                    "{:<64} {:>10.1} {:<20}\n",
                    e.hash,
                    mib(e.size),
                    utc(e.last_use)
                ));
            }
            out(format_args!("{text}"));
        }
        KernelCacheCommand::Clear => match &cache {
            Some(c) => {
                let n = c.clear()?;
                out(format_args!(
                    "removed {n} entries from {}\n",
                    c.dir().display()
                ));
            }
            None => out(format_args!(
                "the kernel cache is off (rxl.conf: kernel_cache = \"off\")\n"
            )),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc(secs: u64) -> String {
    let rem = secs % 86_400;
    let (year, month, day) = toolstack::events::civil_date(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(super::utc(1_796_601_599), "2026-12-06 23:59:59");
    }
}

//! The keys xl knows, and "did you mean" suggestions for the ones it does not.

/// Every top-level key Xen 4.17's xl reads from a domain config (parse_config_data and the
/// helpers it calls), sorted. rxl accepts all of them; the ones it does not model are
/// reported as ignored.
pub const XL_KEYS: &[&str] = &[
    "acpi",
    "acpi_firmware",
    "acpi_laptop_slate",
    "acpi_s3",
    "acpi_s4",
    "altp2m",
    "altp2mhvm",
    "apic",
    "bios",
    "bios_path_override",
    "boot",
    "bootloader",
    "bootloader_args",
    "builder",
    "cap",
    "channel",
    "cmdline",
    "cpu_weight",
    "cpuid",
    "cpus",
    "cpus_soft",
    "device_model",
    "device_model_args",
    "device_model_args_hvm",
    "device_model_args_pv",
    "device_model_override",
    "device_model_stubdomain_override",
    "device_model_stubdomain_seclabel",
    "device_model_user",
    "device_model_version",
    "device_tree",
    "disk",
    "display",
    "dm_restrict",
    "driver_domain",
    "dtdev",
    "e820_host",
    "extra",
    "extratime",
    "firmware",
    "firmware_override",
    "gfx_passthru",
    "gic_version",
    "hap",
    "hdtype",
    "hpet",
    "init_seclabel",
    "iomem",
    "ioports",
    "irqs",
    "kernel",
    "keymap",
    "latency",
    "localtime",
    "max_event_channels",
    "max_grant_frames",
    "max_grant_version",
    "max_maptrack_frames",
    "maxmem",
    "maxvcpus",
    "mca_caps",
    "memory",
    "mmio_hole",
    "ms_vm_genid",
    "msr_relaxed",
    "name",
    "nestedhvm",
    "nographic",
    "nomigrate",
    "nx",
    "on_crash",
    "on_poweroff",
    "on_reboot",
    "on_soft_reset",
    "on_watchdog",
    "oos",
    "opengl",
    "p9",
    "pae",
    "passthrough",
    "pci",
    "pci_msitranslate",
    "pci_permissive",
    "pci_power_mgmt",
    "pci_seize",
    "period",
    "pool",
    "pvcalls",
    "pvshim",
    "pvshim_cmdline",
    "pvshim_extra",
    "pvshim_path",
    "ramdisk",
    "rdm",
    "rdm_mem_boundary",
    "root",
    "rtc_timeoffset",
    "sdl",
    "seclabel",
    "serial",
    "shadow_memory",
    "slice",
    "smbios_firmware",
    "soundhw",
    "spice",
    "spice_clipboard_sharing",
    "spice_image_compression",
    "spice_streaming_video",
    "spiceagent_mouse",
    "spicedisable_ticketing",
    "spicehost",
    "spicepasswd",
    "spiceport",
    "spicetls_port",
    "spiceusbredirection",
    "spicevdagent",
    "stdvga",
    "stubdomain_cmdline",
    "stubdomain_kernel",
    "stubdomain_memory",
    "stubdomain_ramdisk",
    "tee",
    "timer_mode",
    "tsc_mode",
    "type",
    "usb",
    "usbctrl",
    "usbdev",
    "usbdevice",
    "usbversion",
    "uuid",
    "vcpus",
    "vdispl",
    "vendor_device",
    "vfb",
    "vga",
    "videoram",
    "vif",
    "vif2",
    "viridian",
    "vkb",
    "vkb_device",
    "vmtrace_buf_kb",
    "vnc",
    "vncdisplay",
    "vnclisten",
    "vncpasswd",
    "vncunused",
    "vncviewer",
    "vnuma",
    "vpmu",
    "vpt_align",
    "vsnd",
    "vtpm",
    "vuart",
    "xauthority",
    "xen_platform_pci",
    "xend_suspend_evtchn_compat",
];

/// Keys rxl reads that xl does not have.
pub const RXL_KEYS: &[&str] = &["modules"];

/// Keys rxl turns into the [`super::DomainConfig`]. Every other key of [`XL_KEYS`] is
/// accepted and reported as ignored.
pub const MODELLED_KEYS: &[&str] = &[
    "acpi",
    "apic",
    "bios",
    "bios_path_override",
    "boot",
    "bootloader",
    "bootloader_args",
    "builder",
    "cmdline",
    "device_model_args",
    "device_model_override",
    "disk",
    "extra",
    "firmware",
    "firmware_override",
    "hdtype",
    "hpet",
    "kernel",
    "max_event_channels",
    "max_grant_frames",
    "max_maptrack_frames",
    "maxmem",
    "maxvcpus",
    "memory",
    "mmio_hole",
    "modules",
    "name",
    "nographic",
    "on_crash",
    "on_poweroff",
    "on_reboot",
    "on_soft_reset",
    "on_watchdog",
    "pae",
    "pvshim",
    "ramdisk",
    "root",
    "sdl",
    "serial",
    "stdvga",
    "type",
    "uuid",
    "vcpus",
    "vga",
    "videoram",
    "vif",
    "viridian",
    "vnc",
    "vncdisplay",
    "vnclisten",
    "vncunused",
];

/// Whether xl or rxl knows `key`.
pub fn is_known(key: &str) -> bool {
    XL_KEYS.binary_search(&key).is_ok() || RXL_KEYS.contains(&key)
}

/// Levenshtein distance between two short strings, by characters.
#[cfg(test)]
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    Distance::default()
        .within(&a, b, usize::MAX)
        .unwrap_or(usize::MAX)
}

/// The buffers of a bounded Levenshtein distance, kept from one candidate to the next so a
/// search over many candidates allocates nothing per candidate.
#[derive(Default)]
struct Distance {
    b: Vec<char>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

impl Distance {
    /// The distance between `a` and `b` when it is at most `limit`; `None` as soon as a
    /// whole row of the table exceeds `limit` (no later row can come back under it).
    fn within(&mut self, a: &[char], b: &str, limit: usize) -> Option<usize> {
        self.b.clear();
        self.b.extend(b.chars());
        self.prev.clear();
        self.prev.extend(0..=self.b.len());
        self.cur.clear();
        self.cur.resize(self.b.len() + 1, 0);
        for (i, ca) in a.iter().enumerate() {
            self.cur[0] = i + 1;
            for (j, cb) in self.b.iter().enumerate() {
                let subst = self.prev[j] + usize::from(ca != cb);
                self.cur[j + 1] = subst.min(self.prev[j + 1] + 1).min(self.cur[j] + 1);
            }
            std::mem::swap(&mut self.prev, &mut self.cur);
            if self.prev.iter().min().is_some_and(|&m| m > limit) {
                return None;
            }
        }
        self.prev.last().copied().filter(|&d| d <= limit)
    }
}

/// How many times each ASCII character occurs in a word.
struct Letters([i32; 128]);

impl Letters {
    /// The counts of `word`; `None` when it is not all ASCII.
    fn of(word: &[char]) -> Option<Letters> {
        let mut counts = [0i32; 128];
        for &c in word {
            *counts.get_mut(usize::try_from(u32::from(c)).ok()?)? += 1;
        }
        Some(Letters(counts))
    }

    /// A lower bound of the edit distance to `other`: each edit adds, removes or changes
    /// one character, so it mends at most one surplus character on each side.
    fn fewest_edits(&self, other: &str) -> usize {
        let mut counts = self.0;
        for c in other.chars() {
            match usize::try_from(u32::from(c))
                .ok()
                .and_then(|i| counts.get_mut(i))
            {
                Some(n) => *n -= 1,
                // A character the word cannot hold costs an edit of its own.
                None => return 1 + self.fewest_edits(&other.replace(c, "")),
            }
        }
        let surplus: i32 = counts.iter().filter(|&&n| n > 0).sum();
        let missing: i32 = counts.iter().filter(|&&n| n < 0).map(|n| -n).sum();
        usize::try_from(surplus.max(missing)).unwrap_or(0)
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo: at most
/// one edit for words up to four characters, two up to eight, three beyond. The first of
/// equally close candidates wins.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word: Vec<char> = word.chars().collect();
    let limit = match word.len() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut distance = Distance::default();
    let letters = Letters::of(&word);
    candidates
        .into_iter()
        // Candidates that need more edits than the limit by their lengths, or by the
        // letters they do not share, are skipped before the distance (which costs the
        // product of the lengths).
        .filter(|c| c.chars().count().abs_diff(word.len()) <= limit)
        .filter(|c| letters.as_ref().is_none_or(|l| l.fewest_edits(c) <= limit))
        .filter_map(|c| distance.within(&word, c, limit).map(|d| (d, c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A suggestion for an unknown top-level key.
pub(crate) fn suggest_key(key: &str) -> Option<&'static str> {
    suggest(key, XL_KEYS.iter().chain(RXL_KEYS).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_list_is_sorted_and_unique() {
        assert!(XL_KEYS.windows(2).all(|w| w[0] < w[1]));
        for k in MODELLED_KEYS {
            assert!(is_known(k), "{k}");
        }
    }

    #[test]
    fn letters_never_overestimate_the_distance() {
        let pairs = [
            ("kernel", "kernal"),
            ("memroy", "memory"),
            ("abc", ""),
            ("", "abc"),
            ("unknownkey_1", "device_model"),
            ("vncunsed", "vncunused"),
            ("é", "e"),
        ];
        for (a, b) in pairs {
            let chars: Vec<char> = a.chars().collect();
            if let Some(l) = Letters::of(&chars) {
                assert!(l.fewest_edits(b) <= edit_distance(a, b), "{a} {b}");
            }
        }
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("kernel", "kernel"), 0);
        assert_eq!(edit_distance("kernal", "kernel"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("memroy", "memory"), 2);
    }

    #[test]
    fn suggestions_cover_unmodelled_keys() {
        assert_eq!(suggest_key("kernal"), Some("kernel"));
        assert_eq!(suggest_key("memroy"), Some("memory"));
        // A key rxl ignores is still a suggestion target.
        assert_eq!(suggest_key("vncunsed"), Some("vncunused"));
        assert_eq!(suggest_key("module"), Some("modules"));
        assert_eq!(suggest_key("zzzzzzzz"), None);
    }
}

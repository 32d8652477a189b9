//! `cargo xtask e2e`: real Xen 4.17 in QEMU (see docs/e2e.md).

/// Run the end-to-end scenario.
pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("the e2e rig is not built yet")
}

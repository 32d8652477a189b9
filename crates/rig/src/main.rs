//! `rig`: the real-Xen rig on its own (`cargo xtask e2e` runs the same code).

#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    rig::run(&args)
}

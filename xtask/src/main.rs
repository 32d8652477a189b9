//! Project automation: `cargo xtask <task>`.

mod e2e;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        usage();
    };
    match task.as_str() {
        "e2e" => e2e::run(rest),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: cargo xtask <e2e>");
    std::process::exit(2);
}

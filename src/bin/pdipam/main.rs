//! The `pdipam` command line: answers operators' questions with the library.
//!
//! `cargo run --release -- max-pods --instance-type m5.large --prefix-delegation`

mod explain;
mod inspect;
mod max_pods;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pdipam",
    version,
    about = "Prefix-delegation IPAM: max pods, and more to come"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// How many pods fit on an instance type (the EKS max-pods calculation).
    MaxPods(max_pods::Args),
    /// The warm pool the settings keep at N pods: targets in addresses and prefixes, idle cost.
    Explain(explain::Args),
    /// What a checkpoint holds: pdipam's node or subnet format, or ipamd's vpc-cni-ipam/1.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::MaxPods(args) => max_pods::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Inspect(args) => inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`pdipam max-pods --all | head`) is the reader's choice, not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        // Bad input: one line naming the value, exit code 2 (as clap's own usage errors).
        Err(e) => {
            eprintln!("pdipam: {e}");
            ExitCode::from(2)
        }
    }
}

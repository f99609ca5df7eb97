//! The `pdipam` command line: answers operators' questions with the library.
//!
//! `cargo run --release -- max-pods --instance-type m5.large --prefix-delegation`

mod census;
mod cidr;
mod explain;
mod fleet;
mod frag;
mod inspect;
mod map;
mod max_pods;
mod progress;
mod simulate;
mod warm;
mod words;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pdipam",
    version,
    about = "Prefix-delegation IPAM: max pods, warm pools, subnet fragmentation, checkpoints"
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
    /// Pods over nodes sharing one subnet, with the planner; churn; every failure explained.
    Simulate(simulate::Args),
    /// Diagnoses a real subnet from AWS CLI output: free /28s, what spoils them, a reservation.
    Frag(frag::Args),
    /// One subnet shared by many nodes through etcd (runs the pdipam-fleet program).
    #[command(disable_help_flag = true)]
    Fleet(fleet::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and the help shown when no command is given: clap's own output.
        Err(e)
            if !e.use_stderr()
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("pdipam: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Fleet(args) => match fleet::run(&args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::MaxPods(args) => max_pods::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Frag(args) => frag::run(&args),
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

/// A usage error as one line: clap's message without its usage block, its lines joined.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message = text.split("\n\n").next().unwrap_or_default();
    let joined: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = joined.join(" ");
    format!(
        "{} (--help lists every flag)",
        joined.strip_prefix("error: ").unwrap_or(&joined)
    )
}

//! `pdipam fleet ...`: runs the `pdipam-fleet` program (built with the fleet crate, which needs
//! an etcd client this command line does without), as `git` runs its `git-*` programs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct Args {
    /// Everything after `fleet`, passed on (`pdipam fleet --help` lists the commands).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Where `pdipam-fleet` is: `PDIPAM_FLEET` if set, else beside this program, else on `PATH`.
fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PDIPAM_FLEET") {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe()
        .ok()?
        .with_file_name(format!("pdipam-fleet{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(format!("pdipam-fleet{}", std::env::consts::EXE_SUFFIX)))
            .find(|p| p.is_file())
    })
}

/// Runs it with `args`; its exit code is ours.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Some(program) = program() else {
        return Err(
            "fleet commands are in the pdipam-fleet program, not found beside pdipam \
                    or on PATH: build it with `cargo build --release -p pdipam-fleet` \
                    (or `cargo install --path fleet`)"
                .into(),
        );
    };
    let status = Command::new(&program)
        .args(&args.args)
        .status()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    Ok(ExitCode::from(
        status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)),
    ))
}

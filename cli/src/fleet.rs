//! `pdipam fleet ...`: runs the `pdipam-fleet` program (built with the fleet crate, which needs
//! an etcd client this command line does without), as `git` runs its `git-*` programs.
//!
//! `pdipam fleet map` is the one command answered here: `pdipam-fleet export` writes the live
//! fleet in the AWS CLI's shapes (a node per interface) and `pdipam frag` reads it, so a fleet
//! gets frag's whole report and its SVG map.

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

/// `map`'s own arguments (those before `map` go to `pdipam-fleet`: `--etcd`, `--root`, ...).
#[derive(clap::Parser)]
#[command(name = "pdipam fleet map")]
struct MapArgs {
    /// The fleet subnet (IPv4).
    #[arg(long, value_name = "CIDR", value_parser = crate::cidr::parse)]
    subnet: ipnet::IpNet,
    /// Write the SVG map here: one cell per /28, coloured by the node holding it.
    #[arg(long, value_name = "FILE.svg")]
    map: Option<PathBuf>,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

/// Runs it with `args`; its exit code is ours.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let Some(at) = args.args.iter().position(|a| a == "map") {
        return map(&args.args[..at], &args.args[at + 1..]);
    }
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

/// `pdipam fleet [OPTIONS] map --subnet CIDR [--map FILE.svg] [--json]`.
fn map(before: &[OsString], after: &[OsString]) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use clap::Parser;
    let map = MapArgs::try_parse_from(
        std::iter::once(OsString::from("map")).chain(after.iter().cloned()),
    )
    .map_err(|e| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string()
    })?;
    let program = program().ok_or(
        "fleet commands are in the pdipam-fleet program, not found beside pdipam or on PATH",
    )?;
    let dir = std::env::temp_dir().join(format!("pdipam-fleet-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let export = Command::new(&program)
        .args(before)
        .args(["export", "--subnet", &map.subnet.to_string(), "--out"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()));
    let result = export.and_then(|out| {
        if out.status.success() {
            Ok(())
        } else {
            // pdipam-fleet's own one-line error (etcd unavailable, no such subnet, ...).
            Err(String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("pdipam fleet: ")
                .to_string())
        }
    });
    let report = result.map_err(Into::into).and_then(|()| {
        let mut frag = vec![
            OsString::from("frag"),
            "--subnet".into(),
            map.subnet.to_string().into(),
            "--network-interfaces".into(),
            dir.join("network-interfaces.json").into(),
            "--reservations".into(),
            dir.join("reservations.json").into(),
        ];
        if let Some(svg) = &map.map {
            frag.extend(["--map".into(), svg.clone().into_os_string()]);
        }
        if map.json {
            frag.push("--json".into());
        }
        crate::frag::run(&crate::frag::Args::parse_from(frag))
    });
    let _ = std::fs::remove_dir_all(&dir);
    report.map(|()| ExitCode::SUCCESS)
}

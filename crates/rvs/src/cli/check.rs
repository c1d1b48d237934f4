//! `rvs check`: parse a keepalived.conf, print its diagnostics, and optionally the model.

use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub file: PathBuf,
    /// Print the parsed model, defaults filled, as JSON on stdout (docs/config-json.md).
    #[arg(long)]
    pub json: bool,
    /// Fail like `keepalived -t` does: also on the warnings keepalived counts as
    /// configuration errors (unknown keywords, missing protocol, ...).
    #[arg(long)]
    pub strict: bool,
    /// Config id for `@id` conditional lines (default: host name up to the first dot).
    #[arg(short = 'i', long = "config-id")]
    pub config_id: Option<String>,
    /// Print only the summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: &CheckArgs) -> ExitCode {
    let opts = rvs_conf::Options {
        config_id: a.config_id.clone(),
        ..Default::default()
    };
    let parsed = rvs_conf::parse_file(&a.file, &opts);
    let mut err = std::io::stderr().lock();
    if !a.quiet {
        let _ = write!(err, "{}", parsed.render());
    }
    let (e, w) = (parsed.errors(), parsed.warnings());
    let failed = e > 0 || (a.strict && parsed.keepalived_rejects());
    let verdict = if failed { "invalid" } else { "valid" };
    let _ = writeln!(
        err,
        "{}: {verdict} ({e} error{}, {w} warning{})",
        a.file.display(),
        if e == 1 { "" } else { "s" },
        if w == 1 { "" } else { "s" }
    );
    if a.json {
        match serde_json::to_string_pretty(&parsed.config) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                let _ = writeln!(err, "rvs: cannot serialize the model: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

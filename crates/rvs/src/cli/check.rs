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
    /// Fail on more than errors: on the warnings `keepalived -t` counts as configuration
    /// errors (unknown keywords, missing protocol, ...), and on keywords rvs reads but does
    /// not apply (docs/keywords.md), since the file would not do under rvs all it does under
    /// keepalived.
    #[arg(long)]
    pub strict: bool,
    /// With --strict: fail only where `keepalived -t` fails, giving its verdict (keywords rvs
    /// does not apply are still shown, not counted).
    #[arg(long, requires = "strict")]
    pub keepalived_verdict: bool,
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
    let (errors, warnings, unapplied) = (parsed.errors(), parsed.warnings(), parsed.unapplied());
    let failed = errors > 0
        || (a.strict && parsed.keepalived_rejects())
        || (a.strict && !a.keepalived_verdict && unapplied > 0);
    let verdict = if failed { "invalid" } else { "valid" };
    let _ = writeln!(
        err,
        "{}: {verdict} ({errors} error{}, {warnings} warning{}{})",
        a.file.display(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
        if unapplied > 0 {
            format!(", {unapplied} not applied by rvs")
        } else {
            String::new()
        }
    );
    if a.json {
        // The model, and beside it the lines rvs reads but does not apply.
        let mut v = match serde_json::to_value(&parsed.config) {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(err, "rvs: cannot serialize the model: {e}");
                return ExitCode::from(1);
            }
        };
        let not_applied: Vec<serde_json::Value> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.unapplied)
            .map(|d| {
                serde_json::json!({
                    "file": parsed.sources.path(d.loc.file).display().to_string(),
                    "line": d.loc.line,
                    "message": d.message,
                })
            })
            .collect();
        if let Some(o) = v.as_object_mut() {
            o.insert("not_applied".into(), serde_json::Value::Array(not_applied));
        }
        match serde_json::to_string_pretty(&v) {
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

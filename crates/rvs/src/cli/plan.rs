//! `rvs plan -f NEW.conf` and `rvs reload --dry-run`: asks the running daemon what a
//! reload would do (`POST /v1/plan`) and prints it; nothing is changed.

use anyhow::{Context as _, Result};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The configuration to plan a reload of (default: the daemon's own file).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Print the plan as JSON (the API's `Plan`).
    #[arg(long)]
    pub json: bool,
    /// The daemon's control socket (default: `$RVS_CONTROL`, else the default socket).
    #[arg(long)]
    pub control: Option<PathBuf>,
}

/// Exit 0 with the plan, 1 when the daemon would refuse the file.
pub fn run(a: &PlanArgs) -> Result<ExitCode> {
    let file = super::absolute_arg(a.file.as_deref(), "read")?;
    let body = serde_json::to_string(&rvs_api::PlanRequest { file })?;
    let sock = crate::daemon::control::client_path(a.control.as_deref());
    let answer = match crate::daemon::control::call_body(&sock, "POST", "/v1/plan", &body)? {
        Ok(b) => b,
        Err(r) => anyhow::bail!("the daemon answered {}: {}", r.status, r.msg),
    };
    let plan: rvs_api::Plan =
        serde_json::from_str(&answer).context("the daemon's plan is not valid JSON")?;
    if a.json {
        println!("{answer}");
    } else {
        print!("{}", render(&plan));
    }
    Ok(if plan.refused.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The plan as the operator reads it: numbered steps in the reload's order.
pub fn render(plan: &rvs_api::Plan) -> String {
    let mut o = String::new();
    if let Some(why) = &plan.refused {
        let _ = writeln!(o, "a reload would refuse {}:\n{why}", plan.file);
        return o;
    }
    let _ = writeln!(o, "reloading {} would (nothing is changed now):", plan.file);
    if plan.steps.is_empty() {
        let _ = writeln!(o, "  change nothing");
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let part = serde_json::to_value(s.part)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(o, "{:>3}. {:<10} {}", i + 1, part, s.text);
    }
    for w in &plan.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    let _ = writeln!(o, "data plane: {}", plan.summary);
    o
}

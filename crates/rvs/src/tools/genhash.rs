//! `rvs genhash`: like keepalived's genhash, fetch a URL from a real server and print the
//! MD5 digest of the body, to put in an `HTTP_GET` `url { digest … }`.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct GenhashArgs {
    /// Server address.
    #[arg(short = 's', long = "server")]
    pub server: IpAddr,
    /// Server port.
    #[arg(short = 'p', long = "port", default_value_t = 80)]
    pub port: u16,
    /// URL path.
    #[arg(short = 'u', long = "url", default_value = "/")]
    pub url: String,
    /// Host header (default: address:port).
    #[arg(short = 'V', long = "virtualhost")]
    pub virtualhost: Option<String>,
    /// HTTP protocol: 1.0, 1.0C or 1.1.
    #[arg(short = 'P', long = "protocol", default_value = "1.0")]
    pub protocol: String,
    /// Print the response headers too.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Timeout in seconds.
    #[arg(short = 't', long, default_value_t = 5.0)]
    pub timeout: f64,
}

pub fn run(a: &GenhashArgs) -> Result<ExitCode> {
    if !["1.0", "1.0C", "1.1"].contains(&a.protocol.as_str()) {
        bail!("protocol must be 1.0, 1.0C or 1.1");
    }
    let target = SocketAddr::new(a.server, a.port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let h = rvs_conf::model::HttpCheck {
        http_protocol: a.protocol.clone(),
        ..Default::default()
    };
    let req = rvs_check::probe::request(&h, &a.url, a.virtualhost.as_deref(), target);
    let timeout = Duration::from_secs_f64(a.timeout.clamp(0.001, 3600.0));
    let raw = rt.block_on(async {
        let mut s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target))
            .await
            .context("connect timed out")?
            .with_context(|| format!("cannot connect to {target}"))?;
        rvs_check::probe::exchange(&mut s, &req, timeout)
            .await
            .context("reading the response")
    })?;
    let (status, body) =
        rvs_check::probe::parse_response(&raw).context("the answer is not HTTP")?;
    if a.verbose {
        let head_len = raw.len() - body.len();
        print!("{}", String::from_utf8_lossy(&raw[..head_len]));
    }
    println!("HTTP status = {status}, {} bytes of body", body.len());
    println!("MD5SUM = {}", rvs_check::probe::md5_hex(body));
    Ok(ExitCode::SUCCESS)
}

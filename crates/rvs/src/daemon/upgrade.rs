//! Upgrade without dropping connections (`rvs upgrade`, `POST /v1/upgrade`).
//!
//! The running daemon starts the new binary itself — same arguments, same environment
//! (systemd's notify socket, the journal stream), same cgroup — with `RVS_TAKEOVER=1`.
//! The new process connects to `<control socket>.upgrade` and the old one hands over:
//! it stops accepting and passes its listening sockets over the connection (`SCM_RIGHTS`)
//! with their service keys and its VRRP instances as a reload keeps them, waits for the
//! successor's confirmation (without it, it takes everything back and goes on), stops
//! its API servers (freeing the control socket and the metrics port) and says DONE (the
//! successor binds them only then), tells systemd the new main PID, then drains its established
//! connections and exits without touching what the new one now owns (the kernel's IPVS
//! services stay; the listening sockets never close, so a client that connects during
//! the change waits in the kernel's queue instead of being refused). The new process
//! listens on the sockets it was given instead of binding.
//!
//! The protocol is rvs's own and tiny (the descriptors, one JSON line, "OK", "DONE"): both ends
//! are rvs, and no crate passes descriptors with a description of each.

use anyhow::{bail, Context as _, Result};
use rvs_sched::SvcKey;
use std::io::{IoSlice, IoSliceMut, Read as _, Write as _};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The environment variable that makes `rvs run` (and `keepalived`) take over.
pub const ENV: &str = "RVS_TAKEOVER";

/// Most sockets one hand-over carries (services with listeners).
const MAX_FDS: usize = 4096;

/// What the old daemon tells the new one, with the descriptors in the same order.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Handover {
    /// The old daemon's pid (it drains and exits).
    pub pid: u32,
    pub services: Vec<SvcKey>,
    /// The VRRP instances as the old daemon left them (no priority 0 sent, VIPs kept).
    #[serde(default)]
    pub vrrp: Vec<rvs_vrrpd::Carried>,
    /// The XDP program's maps and link, pinned for the successor to load on.
    #[serde(default)]
    pub xdp: Option<rvs_xdp::Carried>,
}

/// A hand-over received and not yet confirmed: the successor confirms
/// ([`Received::confirm`]) once it holds what it was given (an XDP program swapped into
/// the link); dropped unconfirmed, the old daemon takes everything back.
pub struct Received {
    pub handover: Handover,
    pub fds: Vec<OwnedFd>,
    stream: UnixStream,
}

/// Where a daemon with this control socket listens for its successor.
pub fn path_of(control: &Path) -> PathBuf {
    let mut p = control.as_os_str().to_owned();
    p.push(".upgrade");
    PathBuf::from(p)
}

/// The old side: sends the descriptors (chunks, each with one `F` byte), then the
/// hand-over as one JSON line.
pub fn send(stream: &mut UnixStream, h: &Handover, fds: &[BorrowedFd<'_>]) -> Result<()> {
    // SCM_MAX_FD is 253 per message.
    for chunk in fds.chunks(200) {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(200))];
        let mut anc = rustix::net::SendAncillaryBuffer::new(&mut space);
        if !anc.push(rustix::net::SendAncillaryMessage::ScmRights(chunk)) {
            bail!("cannot attach {} descriptors", chunk.len());
        }
        rustix::net::sendmsg(
            stream.as_fd(),
            &[IoSlice::new(b"F")],
            &mut anc,
            rustix::net::SendFlags::empty(),
        )
        .context("sending the listening sockets")?;
    }
    let mut line = serde_json::to_vec(h)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    // The successor says it has them: only then is the hand-over done (a successor that
    // died, or a client that merely connected, leaves everything with this process).
    stream.set_read_timeout(Some(ACK_WAIT))?;
    let mut ack = [0u8; 3];
    stream
        .read_exact(&mut ack)
        .context("the successor did not confirm the hand-over")?;
    if &ack != b"OK\n" {
        bail!("the successor answered the hand-over with {ack:?}");
    }
    Ok(())
}

/// How long the old daemon waits for the successor's confirmation.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The new side: connects to the running daemon's upgrade socket and receives its
/// listening sockets. `Ok(None)`: nobody to take over from.
pub fn receive(control: &Path) -> Result<Option<Received>> {
    let path = path_of(control);
    let Ok(mut s) = UnixStream::connect(&path) else {
        return Ok(None);
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    // `F` bytes, each with a chunk of descriptors, until the line starts.
    let first = loop {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(200))];
        let mut anc = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 1];
        let got = rustix::net::recvmsg(
            s.as_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .context("receiving the listening sockets")?;
        for msg in anc.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(r) = msg {
                fds.extend(r);
            }
        }
        if got.bytes == 0 {
            bail!("the running rvs closed the hand-over before it was complete");
        }
        if fds.len() > MAX_FDS {
            bail!("the hand-over is larger than any rvs sends");
        }
        if buf[0] != b'F' {
            break buf[0];
        }
    };
    let mut line = vec![first];
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if s.read(&mut byte).context("reading the hand-over")? == 0 || line.len() > 1 << 20 {
            bail!("the hand-over ended early");
        }
        line.push(byte[0]);
    }
    let h: Handover = serde_json::from_slice(&line).context("the hand-over is not rvs's")?;
    if h.services.len() != fds.len() {
        bail!(
            "the hand-over names {} services but carried {} sockets",
            h.services.len(),
            fds.len()
        );
    }
    Ok(Some(Received {
        handover: h,
        fds,
        stream: s,
    }))
}

impl Received {
    /// Tells the old daemon the hand-over is taken, then waits (blocking) until it has
    /// freed the control socket and the metrics port (binding before would race with it).
    pub fn confirm(mut self) -> Result<()> {
        self.stream
            .write_all(b"OK\n")
            .context("confirming the hand-over")?;
        self.stream.set_read_timeout(Some(ACK_WAIT))?;
        let mut done = [0u8; 5];
        if self.stream.read_exact(&mut done).is_err() || &done != b"DONE\n" {
            tracing::warn!("the old rvs did not say its API is stopped: binding anyway");
        }
        // The old daemon removes its pins once confirmed; should it have died first, so
        // does this one (a pinned link would keep the program attached for ever).
        if let Some(x) = &self.handover.xdp {
            rvs_xdp::remove_pins(&x.dir);
        }
        Ok(())
    }
}

/// The old side, once its API servers have stopped: the successor may bind their
/// socket and port.
pub fn done(stream: &mut UnixStream) -> Result<()> {
    stream.write_all(b"DONE\n")?;
    Ok(())
}

//! BIRD's control socket: a command per line; each reply line starts with a four-digit
//! code and `-` (more follows) or a space (the last line); a line starting with a space
//! continues the previous code. Codes below 1000 end a command that worked, 8000 and up
//! one that did not (`9001 Parse error …`). Written by hand because it is twenty lines:
//! `birdc` speaks it too, but with a prompt meant for people.

use crate::{BgpError, Neighbor, Session};
use std::io::{BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// One reply: its lines, each with the code it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<(u16, String)>,
}

impl Reply {
    /// The reply's text, one line each.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A client of one BIRD control socket (a connection per command: BIRD serves many).
#[derive(Debug, Clone)]
pub struct Control {
    path: PathBuf,
}

/// How long BIRD may take to answer a command.
const ANSWER: Duration = Duration::from_secs(10);

impl Control {
    pub fn new(path: PathBuf) -> Control {
        Control { path }
    }

    /// Runs `command`; BIRD's refusal (a code of 8000 or more) is an error with its text.
    pub fn command(&self, command: &str) -> Result<Reply, BgpError> {
        let io = |source| BgpError::Socket {
            path: self.path.clone(),
            source,
        };
        let s = UnixStream::connect(&self.path).map_err(io)?;
        s.set_read_timeout(Some(ANSWER)).map_err(io)?;
        s.set_write_timeout(Some(ANSWER)).map_err(io)?;
        let mut r = BufReader::new(s.try_clone().map_err(io)?);
        // The greeting (`0001 BIRD 2.0.12 ready.`).
        read_reply(&mut r, "(greeting)")?;
        (&s).write_all(format!("{command}\n").as_bytes())
            .map_err(io)?;
        let reply = read_reply(&mut r, command)?;
        match reply.lines.last() {
            Some((code, _)) if *code >= 8000 => Err(BgpError::Refused {
                command: command.to_owned(),
                text: reply.text(),
            }),
            _ => Ok(reply),
        }
    }
}

fn read_reply(r: &mut impl std::io::BufRead, command: &str) -> Result<Reply, BgpError> {
    let mut reply = Reply::default();
    let mut code = 0u16;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|source| BgpError::Socket {
            path: PathBuf::from("(bird)"),
            source,
        })?;
        if n == 0 {
            return Err(BgpError::Garbled {
                command: command.to_owned(),
                line: "(closed before the last line)".into(),
            });
        }
        let line = line.trim_end_matches('\n');
        let garbled = || BgpError::Garbled {
            command: command.to_owned(),
            line: line.to_owned(),
        };
        if let Some(rest) = line.strip_prefix(' ') {
            reply.lines.push((code, rest.to_owned()));
            continue;
        }
        let (digits, rest) = line.split_at_checked(4).ok_or_else(garbled)?;
        code = digits.parse().map_err(|_| garbled())?;
        let mut chars = rest.chars();
        let sep = chars.next().ok_or_else(garbled)?;
        reply.lines.push((code, chars.as_str().to_owned()));
        match sep {
            '-' => {}
            ' ' => return Ok(reply),
            _ => return Err(garbled()),
        }
    }
}

/// The sessions of `neighbors` in a `show protocols` reply (lines of code 1002: name,
/// protocol, table, state, since — two words with `timeformat protocol iso long` — and
/// the info). A neighbour BIRD does not list is reported `Missing`.
pub fn sessions(reply: &Reply, neighbors: &[Neighbor]) -> Vec<Session> {
    neighbors
        .iter()
        .map(|n| {
            let name = n.protocol();
            let row = reply.lines.iter().find_map(|(code, text)| {
                let w: Vec<&str> = text.split_whitespace().collect();
                (*code == 1002 && w.first() == Some(&name.as_str())).then_some(w)
            });
            match row {
                Some(w) if w.len() >= 6 => {
                    // BGP's own state is the first word of the info (one word:
                    // `Established`, `Active`, `Connect`, …), then BIRD's reason.
                    Session {
                        neighbor: n.address,
                        state: w.get(6).unwrap_or(&w[3]).to_string(),
                        since: format!("{} {}", w[4], w[5]),
                        info: w.get(7..).unwrap_or_default().join(" "),
                    }
                }
                _ => Session {
                    neighbor: n.address,
                    state: "Missing".into(),
                    since: String::new(),
                    info: "BIRD does not list this session".into(),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Reply {
        read_reply(&mut std::io::Cursor::new(text.as_bytes()), "t").unwrap_or_default()
    }

    #[test]
    fn replies_end_at_the_line_with_a_space_after_the_code() {
        let r = reply("0001 BIRD 2.0.12 ready.\n");
        assert_eq!(r.lines, vec![(1, "BIRD 2.0.12 ready.".to_owned())]);
        let r =
            reply("0002-Reading configuration from x\n continued\n0003 Reconfigured\nnot read\n");
        assert_eq!(
            r.lines,
            vec![
                (2, "Reading configuration from x".to_owned()),
                (2, "continued".to_owned()),
                (3, "Reconfigured".to_owned())
            ]
        );
        for bad in ["", "12", "abcd ok\n", "0001+x\n", "0001-more\n"] {
            let e = read_reply(&mut std::io::Cursor::new(bad.as_bytes()), "t");
            assert!(matches!(e, Err(BgpError::Garbled { .. })), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn sessions_are_read_from_show_protocols() {
        let r = reply(
            "2002-Name       Proto      Table      State  Since         Info\n\
             1002-device1    Device     ---        up     2026-12-05 20:18:47.762  \n\
             1002-peer_198_18_0_1 BGP        ---        up     2026-12-05 20:18:51.669  Established   \n\
             1002-peer_198_18_0_9 BGP        ---        start  2026-12-05 20:18:47.762  Active        Socket: Connection refused\n\
             0000 \n",
        );
        let n = |a: &str| Neighbor {
            address: a.parse().unwrap_or(std::net::IpAddr::from([0u8; 4])),
            remote_as: 1,
            bfd: false,
            hold_time: None,
            source_address: None,
        };
        let s = sessions(&r, &[n("198.18.0.1"), n("198.18.0.9"), n("198.18.0.7")]);
        assert_eq!(s[0].state, "Established");
        assert!(s[0].established());
        assert_eq!(s[0].since, "2026-12-05 20:18:51.669");
        assert_eq!(s[1].state, "Active");
        assert_eq!(s[1].info, "Socket: Connection refused");
        assert_eq!(s[2].state, "Missing");
    }
}

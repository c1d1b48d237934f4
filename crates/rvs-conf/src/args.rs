//! Argument parsing for keyword handlers: strict numbers with ranges, timers, booleans,
//! addresses and script strings, each reporting a located error on bad input.

use crate::diag::Diags;
use crate::lex::Token;
use crate::model::Script;
use crate::tree::Node;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

pub struct Args<'d> {
    pub diags: &'d mut Diags,
}

impl Args<'_> {
    /// The `i`-th argument (0-based), or an error that names the keyword.
    pub fn need<'n>(&mut self, n: &'n Node, i: usize, what: &str) -> Option<&'n Token> {
        let t = n.args.get(i);
        if t.is_none() {
            self.diags.error(
                n.kw.loc,
                n.kw.width,
                format!("'{}' needs {what}", n.kw.text),
            );
        }
        t
    }

    /// Warns (rvs only: keepalived ignores them silently) about arguments past `max`.
    pub fn extra(&mut self, n: &Node, max: usize) {
        if n.args.len() > max {
            let first = &n.args[max];
            let text: Vec<&str> = n.args[max..].iter().map(|t| t.text.as_str()).collect();
            let d = self.diags.warning(
                first.loc,
                first.width,
                format!(
                    "extra text after '{}' is ignored: '{}'",
                    n.kw.text,
                    text.join(" ")
                ),
            );
            if text.iter().any(|t| !t.is_ascii()) {
                d.hint("this looks like a comment: start comments with '#' or '!'");
            } else if let Some(k) = text
                .iter()
                .find(|t| crate::schema::all_names().contains(*t))
            {
                d.hint(format!(
                    "'{k}' is a keyword: put each keyword on its own line"
                ));
            }
        }
    }

    /// A strictly parsed integer in `[min, max]` (keepalived's `read_int_strvec` family).
    pub fn int<T>(&mut self, t: &Token, min: i64, max: i64) -> Option<T>
    where
        T: TryFrom<i64>,
    {
        let Some(v) = parse_int(&t.text) else {
            self.diags
                .error(t.loc, t.width, format!("invalid number '{}'", t.text));
            return None;
        };
        if v < min || v > max {
            self.diags.error(
                t.loc,
                t.width,
                format!("number '{}' outside range [{min}, {max}]", t.text),
            );
            return None;
        }
        T::try_from(v).ok()
    }

    /// Shorthand: the first argument as an integer in range.
    pub fn arg_int<T: TryFrom<i64>>(&mut self, n: &Node, min: i64, max: i64) -> Option<T> {
        self.extra(n, 1);
        let t = self.need(n, 0, "a number")?;
        self.int(t, min, max)
    }

    /// A decimal number of seconds in `[min, max]`.
    /// A time in seconds within `[min, max]` (keepalived's limits for the keyword).
    pub fn timer(&mut self, t: &Token, min: f64, max: f64) -> Option<Duration> {
        let v = match t.text.parse::<f64>() {
            Ok(v) if v.is_finite() && !t.text.starts_with('+') => v,
            _ => {
                self.diags.error(
                    t.loc,
                    t.width,
                    format!("invalid time '{}': expected seconds, e.g. 1 or 2.5", t.text),
                );
                return None;
            }
        };
        if v < min || v > max {
            self.diags.error(
                t.loc,
                t.width,
                format!("time '{}' outside range [{min}, {max}]", t.text),
            );
            return None;
        }
        Duration::try_from_secs_f64(v).ok()
    }

    pub fn arg_timer(&mut self, n: &Node, min: f64, max: f64) -> Option<Duration> {
        self.extra(n, 1);
        let t = self.need(n, 0, "a time in seconds")?;
        self.timer(t, min, max)
    }

    /// An optional boolean argument: absent means true.
    pub fn flag(&mut self, n: &Node) -> bool {
        self.extra(n, 1);
        match n.args.first() {
            None => true,
            Some(t) => match t.text.as_str() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    self.diags
                        .error(
                            t.loc,
                            t.width,
                            format!("invalid boolean '{}' for '{}'", t.text, n.kw.text),
                        )
                        .hint("use one of on, off, true, false, yes, no (lowercase)");
                    true
                }
            },
        }
    }

    /// A keyword that takes no argument.
    pub fn bare(&mut self, n: &Node) -> bool {
        self.extra(n, 0);
        true
    }

    pub fn ip(&mut self, t: &Token) -> Option<IpAddr> {
        if let Some(a) = parse_ip(&t.text) {
            Some(a)
        } else {
            self.diags
                .error(t.loc, t.width, format!("invalid IP address '{}'", t.text));
            None
        }
    }

    /// An address where keepalived also takes `ADDR/PREFIX` or an IPv4 range `A.B.C.D-E`
    /// and uses the address alone (`inet_stosockaddr` cuts at '/' or '-'): the rest is
    /// ignored, as keepalived ignores it, with a note (rvs-only, not counted by `--strict`).
    pub fn host_ip(&mut self, t: &Token) -> Option<IpAddr> {
        if let Some(a) = parse_ip(&t.text) {
            return Some(a);
        }
        let cut = t.text.find('/').or_else(|| {
            t.text
                .find('-')
                .filter(|i| parse_ip(&t.text[..*i]).is_some_and(|a| a.is_ipv4()))
        });
        let Some(a) = cut.and_then(|i| parse_ip(&t.text[..i])) else {
            return self.ip(t);
        };
        let rest = &t.text[cut.unwrap_or(0)..];
        self.diags.warning(
            t.loc,
            t.width,
            format!(
                "'{rest}' after the address is ignored (as keepalived ignores it): {a} is used"
            ),
        );
        Some(a)
    }

    /// [`Args::host_ip`] of a keyword's only argument.
    pub fn arg_host_ip(&mut self, n: &Node) -> Option<IpAddr> {
        self.extra(n, 1);
        let t = self.need(n, 0, "an IP address")?;
        self.host_ip(t)
    }

    pub fn arg_ip(&mut self, n: &Node) -> Option<IpAddr> {
        self.extra(n, 1);
        let t = self.need(n, 0, "an IP address")?;
        self.ip(t)
    }

    pub fn port(&mut self, t: &Token) -> Option<u16> {
        self.int(t, 0, 65535)
    }

    pub fn string(&mut self, n: &Node) -> Option<String> {
        self.extra(n, 1);
        self.need(n, 0, "a value").map(|t| t.text.clone())
    }

    /// A script string: `command [user [group]]` with keepalived's quoting rules.
    pub fn script(&mut self, n: &Node) -> Option<Script> {
        if n.args.is_empty() {
            self.diags.error(
                n.kw.loc,
                n.kw.width,
                format!("'{}' needs a script", n.kw.text),
            );
            return None;
        }
        match parse_script(&n.rest()) {
            Ok(s) if !s.argv.is_empty() => Some(s),
            Ok(_) => {
                self.diags
                    .error(n.args[0].loc, n.args[0].width, "empty script");
                None
            }
            Err(e) => {
                self.diags.error(n.args[0].loc, n.args[0].width, e);
                None
            }
        }
    }
}

pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = body.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// An IPv4 or IPv6 address; IPv6 may carry a `%scope` suffix, which is dropped.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.split('%').next().unwrap_or(s);
    IpAddr::from_str(s).ok()
}

/// keepalived's two-pass script parsing (spec §1.6): pass 1 splits the line into
/// `command [user [group]]`, honouring both quote kinds and keeping backslashes; pass 2
/// splits the command into argv, removing quotes and processing escapes.
pub fn parse_script(line: &str) -> Result<Script, String> {
    let words = split_words(line, false)?;
    let mut it = words.into_iter();
    let cmd = it.next().unwrap_or_default();
    let mut user = it.next();
    let mut group = it.next();
    if let Some(u) = user.take() {
        if let Some((a, b)) = u.split_once(':') {
            user = Some(a.to_owned());
            if !b.is_empty() {
                group = Some(b.to_owned());
            }
        } else {
            user = Some(u);
        }
    }
    if let Some(g) = group.take() {
        let g = g.trim_start_matches(':').to_owned();
        group = (!g.is_empty()).then_some(g);
    }
    let argv = split_words(&cmd, true)?;
    Ok(Script { argv, user, group })
}

fn split_words(line: &str, unescape: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {
                if c == '\\' && unescape {
                    cur.push(escape(&mut chars));
                } else {
                    cur.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    }
                }
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    have = true;
                }
                ' ' | '\t' => {
                    if have {
                        out.push(std::mem::take(&mut cur));
                        have = false;
                    }
                }
                '\\' => {
                    have = true;
                    if unescape {
                        cur.push(escape(&mut chars));
                    } else {
                        cur.push(c);
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    }
                }
                _ => {
                    have = true;
                    cur.push(c);
                }
            },
        }
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} in script string"));
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    let Some(c) = chars.next() else { return '\\' };
    match c {
        'a' => '\x07',
        'b' => '\x08',
        'E' => '\x1b',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        'c' => chars.next().map_or('c', |x| char::from((x as u8) & 0x1f)),
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        chars.next();
                    }
                    None => break,
                }
            }
            char::from_u32(v & 0xff).unwrap_or('?')
        }
        'x' => {
            let mut v = 0;
            let mut n = 0;
            while n < 2 {
                match chars.peek().and_then(|d| d.to_digit(16)) {
                    Some(d) => {
                        v = v * 16 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                'x'
            } else {
                char::from_u32(v).unwrap_or('?')
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("4x"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("+1"), None);
    }

    #[test]
    fn scripts() {
        let s = parse_script("\"/usr/bin/killall -0 haproxy\"").unwrap();
        assert_eq!(s.argv, ["/usr/bin/killall", "-0", "haproxy"]);
        assert_eq!(s.user, None);
        let s = parse_script("/bin/check.sh nobody:nogroup").unwrap();
        assert_eq!(s.argv, ["/bin/check.sh"]);
        assert_eq!(
            (s.user.as_deref(), s.group.as_deref()),
            (Some("nobody"), Some("nogroup"))
        );
        let s = parse_script("'/bin/echo a\\tb' root").unwrap();
        assert_eq!(s.argv, ["/bin/echo", "a\tb"]);
        assert!(parse_script("\"abc").is_err());
    }
}

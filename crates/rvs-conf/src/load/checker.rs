//! Health checkers inside a `real_server`: `TCP_CHECK`, `HTTP_GET`/`SSL_GET`, `MISC_CHECK`, `SMTP_CHECK`, `DNS_CHECK`, `UDP_CHECK`, `PING_CHECK`, `FILE_CHECK`, `BFD_CHECK`.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::time::Duration;

impl Loader<'_> {
    pub(super) fn checker(&mut self, node: &Node, ctx: &CheckCtx<'_>) -> Vec<Checker> {
        let a = &mut self.a;
        a.extra(node, 0);
        let mut c = Common::default();
        let mut extra = Vec::new();
        let mut kind = match node.name() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" => CheckKind::Http(HttpCheck {
                http_protocol: "1.0".into(),
                ..HttpCheck::default()
            }),
            "SSL_GET" => CheckKind::Ssl(HttpCheck {
                http_protocol: "1.0".into(),
                ..HttpCheck::default()
            }),
            "MISC_CHECK" => CheckKind::Misc(MiscCheck {
                misc_path: None,
                misc_timeout: ctx.vs_delay_loop,
                misc_dynamic: false,
            }),
            "SMTP_CHECK" => CheckKind::Smtp(SmtpCheck {
                helo_name: "smtpchecker.keepalived.org".into(),
            }),
            "DNS_CHECK" => CheckKind::Dns(DnsCheck {
                query_type: "SOA".into(),
                name: String::new(),
            }),
            "UDP_CHECK" => CheckKind::Udp(UdpCheck {
                payload: None,
                require_reply: false,
                reply: None,
                min_reply_length: 0,
                max_reply_length: 255,
            }),
            "PING_CHECK" => CheckKind::Ping,
            "FILE_CHECK" => CheckKind::File(FileCheck {
                track_file: None,
                weight: None,
                reverse: false,
            }),
            _ => CheckKind::Bfd(BfdCheck { name: None }),
        };
        // MISC_CHECK's `user NAME [GROUP]`: `Some(None)` when it names no user of this host.
        let mut misc_user: Option<Option<(String, Option<String>)>> = None;
        for n in node.children() {
            if common(a, n, &mut c, node.name()) {
                continue;
            }
            match (&mut kind, n.name()) {
                (CheckKind::Http(h) | CheckKind::Ssl(h), k) => match k {
                    "url" => {
                        if let Some(u) = url(a, n) {
                            h.urls.push(u);
                        }
                    }
                    "virtualhost" => h.virtualhost = a.string(n),
                    "http_protocol" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "1.0, 1.0C or 1.1") {
                            match t.text.as_str() {
                                "1.0" | "1.1" => h.http_protocol.clone_from(&t.text),
                                "1.0C" | "1.0c" => h.http_protocol = "1.0C".into(),
                                _ => {
                                    a.diags
                                        .error(
                                            t.loc,
                                            t.width,
                                            format!("invalid http_protocol '{}'", t.text),
                                        )
                                        .hint("1.0, 1.0C or 1.1");
                                }
                            }
                        }
                    }
                    "enable_sni" => h.enable_sni = a.flag(n),
                    "sni_name" => {
                        h.enable_sni = true;
                        h.sni_name = n.args.first().map(|t| t.text.clone());
                    }
                    "fast_recovery" => h.fast_recovery = a.flag(n),
                    "tls_compliant" => h.tls_compliant = a.flag(n),
                    _ => {}
                },
                (CheckKind::Misc(m), k) => match k {
                    "misc_path" => m.misc_path = a.script(n),
                    "misc_timeout" => set(
                        &mut m.misc_timeout,
                        a.arg_int::<u32>(n, 1, i64::from(u32::MAX))
                            .map(|s| Duration::from_secs(u64::from(s))),
                    ),
                    "misc_dynamic" => m.misc_dynamic = a.bare(n),
                    "user" => misc_user = Some(script_user(a, n)),
                    _ => {}
                },
                (CheckKind::Smtp(s), k) => match k {
                    "helo_name" => {
                        if let Some(v) = a.string(n) {
                            s.helo_name = v;
                        }
                    }
                    "host" => {
                        deprecated(a, n, "one SMTP_CHECK per host");
                        let mut hc = c.clone();
                        for hn in n.children() {
                            common(a, hn, &mut hc, "SMTP_CHECK host");
                        }
                        extra.push(hc);
                    }
                    _ => {}
                },
                (CheckKind::Dns(dq), k) => match k {
                    "type" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "a query type") {
                            // keepalived's check_dns.c types.
                            const TYPES: [&str; 9] = [
                                "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
                            ];
                            let up = t.text.to_ascii_uppercase();
                            if TYPES.contains(&up.as_str()) {
                                dq.query_type = up;
                            } else {
                                a.diags
                                    .error(
                                        t.loc,
                                        t.width,
                                        format!("unknown DNS query type '{}'", t.text),
                                    )
                                    .hint(TYPES.join(" "));
                            }
                        }
                    }
                    "name" => {
                        if let Some(v) = a.string(n) {
                            if v.split('.').filter(|_| v != ".").any(str::is_empty)
                                && !v.is_empty()
                                && v.trim_end_matches('.').split('.').any(str::is_empty)
                            {
                                a.diags.error(
                                    n.args[0].loc,
                                    n.args[0].width,
                                    format!("DNS name '{v}' has an empty label"),
                                );
                            } else {
                                dq.name = v;
                            }
                        }
                    }
                    _ => {}
                },
                (CheckKind::Udp(u), k) => match k {
                    "payload" => u.payload = hex_arg(a, n, false),
                    "require_reply" => {
                        u.require_reply = true;
                        if !n.args.is_empty() {
                            u.reply = hex_arg(a, n, true);
                        }
                    }
                    "min_reply_length" => set(&mut u.min_reply_length, a.arg_int(n, 0, 65535)),
                    "max_reply_length" => set(&mut u.max_reply_length, a.arg_int(n, 0, 65535)),
                    _ => {}
                },
                (CheckKind::File(f), k) => match k {
                    "track_file" => {
                        f.track_file = a.string(n);
                        if let Some(t) = n.args.first() {
                            self.locs.file_check_refs.push(t.clone());
                        }
                    }
                    "weight" => {
                        if let Some((w, r)) = weight_reverse(a, n, i64::from(i32::MAX)) {
                            f.weight = Some(w);
                            f.reverse = r;
                        }
                    }
                    _ => {}
                },
                (CheckKind::Bfd(b), "name") => {
                    b.name = a.string(n);
                    if let Some(t) = n.args.first() {
                        self.locs.bfd_check_refs.push(t.clone());
                    }
                }
                _ => {}
            }
        }
        // Required parts.
        match &mut kind {
            CheckKind::Http(h) | CheckKind::Ssl(h) if h.urls.is_empty() => {
                a.diags
                    .ka_warning(
                        node.kw.loc,
                        node.kw.width,
                        format!("{} has no url: the checker is ignored", node.name()),
                    )
                    .hint("add 'url { path /healthz }'");
                return Vec::new();
            }
            CheckKind::Misc(m) if m.misc_path.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "MISC_CHECK has no misc_path: the checker is ignored",
                );
                return Vec::new();
            }
            // keepalived: "Failed to set uid/gid for misc checker script ... - removing".
            CheckKind::Misc(_) if misc_user == Some(None) => return Vec::new(),
            CheckKind::Misc(m) => {
                if let (Some(Some((u, g))), Some(sc)) = (misc_user, m.misc_path.as_mut()) {
                    if sc.user.is_none() {
                        sc.user = Some(u);
                        sc.group = g;
                    }
                }
            }
            CheckKind::File(f) if f.track_file.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "FILE_CHECK has no track_file: the checker is ignored",
                );
                return Vec::new();
            }
            CheckKind::Bfd(b) if b.name.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "BFD_CHECK has no name: the checker is ignored",
                );
                return Vec::new();
            }
            _ => {}
        }
        // rvs_forwarding_path_check asked where it cannot apply: said at its line.
        if c.forwarding_path == Some(true) {
            let why = if matches!(
                kind,
                CheckKind::Tcp | CheckKind::Http(_) | CheckKind::Ssl(_) | CheckKind::Smtp(_)
            ) {
                ctx.no_path
            } else {
                Some("it probes with a TCP SYN: TCP_CHECK, HTTP_GET, SSL_GET and SMTP_CHECK only")
            };
            if let (Some(why), Some(n)) = (
                why,
                node.children()
                    .iter()
                    .find(|n| n.name() == "rvs_forwarding_path_check"),
            ) {
                a.diags.warning(
                    n.kw.loc,
                    n.kw.width,
                    format!("rvs_forwarding_path_check is not applied here: {why}"),
                );
                c.forwarding_path = Some(false);
            }
        }
        // Per-type defaults (spec §11): retry 1 (DNS 3, MISC 0); delay_before_retry 1 s
        // (HTTP/SSL 3 s, DNS = delay_loop).
        let (def_retry, def_dbr) = match kind {
            CheckKind::Dns(_) => (3, None),
            CheckKind::Misc(_) => (0, Some(Duration::from_secs(1))),
            CheckKind::Http(_) | CheckKind::Ssl(_) => (1, Some(Duration::from_secs(3))),
            _ => (1, Some(Duration::from_secs(1))),
        };
        if let CheckKind::Http(h) | CheckKind::Ssl(h) = &mut kind {
            if h.virtualhost.is_none() {
                h.virtualhost.clone_from(&ctx.vhost);
            }
        }
        // checker_log_all_failures: the default of every checker's log_all_failures.
        let log_all = self.cfg.global_defs.checker_log_all_failures;
        let mk = |c: &Common, kind: CheckKind| {
            let delay_loop = c.delay_loop.unwrap_or(ctx.delay_loop);
            Checker {
                kind,
                connect_ip: c.connect_ip,
                connect_port: c.connect_port,
                bindto: c.bindto,
                bind_port: c.bind_port,
                bind_if: c.bind_if.clone(),
                connect_timeout: c.connect_timeout.unwrap_or(ctx.connect_timeout),
                fwmark: c.fwmark,
                retry: c.retry.or(ctx.d.retry).unwrap_or(def_retry),
                delay_before_retry: c
                    .delay_before_retry
                    .or(ctx.d.delay_before_retry)
                    .or(def_dbr)
                    .unwrap_or(delay_loop),
                delay_loop,
                warmup: c.warmup.or(ctx.d.warmup).unwrap_or(delay_loop),
                alpha: c.alpha.unwrap_or(ctx.alpha),
                log_all_failures: c.log_all_failures || log_all,
                forwarding_path: c.forwarding_path,
            }
        };
        let mut out = vec![mk(&c, kind.clone())];
        for hc in &extra {
            out.push(mk(hc, kind.clone()));
        }
        out
    }
}

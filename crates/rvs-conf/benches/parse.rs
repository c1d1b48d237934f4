//! Parsing a large configuration: about 1 MB, over a thousand virtual servers.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "benchmark harness"
)]
//! `cargo bench -p rvs-conf --bench parse`; figures in docs/BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::fmt::Write as _;
use std::path::Path;

/// A config of `n` virtual servers with 4 real servers and a `TCP_CHECK` each.
pub fn big_config(n: usize) -> String {
    let mut s = String::from("global_defs {\n    router_id bench\n}\n");
    for i in 0..n {
        let (a, b) = (i / 250, i % 250);
        let _ = write!(
            s,
            "virtual_server 198.18.{a}.{b} 80 {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n    persistence_timeout 50\n"
        );
        for r in 0..4 {
            let _ = write!(
                s,
                "    real_server 198.19.{a}.{} 80 {{\n        weight {}\n        TCP_CHECK {{\n            connect_port 80\n            connect_timeout 3\n            retry 3\n            delay_before_retry 3\n        }}\n    }}\n",
                (b + r * 50) % 250,
                r + 1
            );
        }
        s.push_str("}\n");
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = big_config(1100);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function(format!("{}_bytes_{}_vs", text.len(), 1100), |b| {
        b.iter(|| {
            let p = rvs_conf::parse_str(
                Path::new("/bench.conf"),
                &text,
                &rvs_conf::Options::default(),
            );
            assert_eq!(p.errors(), 0);
            p.config.virtual_servers.len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

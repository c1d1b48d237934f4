//! The ipvsadm command line never panics, whatever the arguments: every input is either
//! an invocation or an ipvsadm error with exit status 2 or 255.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

const WORDS: &[&str] = &[
    "-A",
    "-E",
    "-D",
    "-C",
    "-R",
    "-S",
    "-a",
    "-e",
    "-d",
    "-L",
    "-l",
    "-Z",
    "-h",
    "-v",
    "-t",
    "-u",
    "-f",
    "-6",
    "-s",
    "-p",
    "-M",
    "-b",
    "-r",
    "-g",
    "-i",
    "-m",
    "-w",
    "-x",
    "-y",
    "-n",
    "-c",
    "-X",
    "-o",
    "--set",
    "--stats",
    "--rate",
    "--thresholds",
    "--persistent-conn",
    "--tun-info",
    "--timeout",
    "--sort",
    "--nosort",
    "--exact",
    "--sctp-service",
    "--weight=3",
    "-Ln",
    "-At",
    "-at",
    "-p60",
    "-w70000",
    "198.18.0.1:80",
    "[fd00:198:18::1]:80",
    "fd00:198:18::1",
    "10.1",
    "0x7f.1",
    "255.255.255.0",
    "rr",
    "sh",
    "sh-port,sh-fallback",
    "flag-9",
    "65535",
    "0",
    "-1",
    "4294967296",
    "[",
    "[]:",
    ":",
    "",
    "-",
    "--",
    "ipvsadm",
    "é",
    "198.18.0.1:99999",
];

fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn parse_never_panics(args in proptest::collection::vec(arg(), 0..8)) {
        match rvs_adm::cmd::parse(&args) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.code == 2 || e.code == 255, "{e:?}");
                prop_assert!(!e.msg.is_empty());
            }
        }
    }

    #[test]
    fn restore_lines_never_panic(line in ".{0,80}") {
        let args = rvs_adm::cmd::restore_line(&line);
        let _ = rvs_adm::cmd::parse(&args);
    }
}

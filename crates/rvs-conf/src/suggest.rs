//! Hints for mistyped keywords: `TCP_ CHECK` → `TCP_CHECK`, `virtual server` →
//! `virtual_server`, `connect port` → `connect_port`, `lb_algoo` → `lb_algo`, and comments
//! written without `#` that swallow the keyword after them.

use crate::lex::Token;
use crate::schema::{self, Kw, Shape};

/// A hint for an unknown keyword `kw` (followed by `args`) in the block `table`.
pub fn hint(table: &'static [Kw], kw: &Token, args: &[Token]) -> Option<String> {
    let names = schema::names(table);
    // A keyword split in two by a stray space: of this block, or of the block it was
    // meant to be in (a brace the split keyword opened may have closed that block).
    let all = schema::all_names();
    let known = |k: &str| names.contains(&k) || all.contains(&k);
    if let Some(next) = args.first() {
        for joined in [
            format!("{}{}", kw.text, next.text),
            format!("{}_{}", kw.text, next.text),
        ] {
            if known(&joined) {
                return Some(format!(
                    "did you mean {joined}? ('{} {}' has a space where the keyword has none)",
                    kw.text, next.text
                ));
            }
        }
        // `delay before_retry` style: more words may be involved.
        if args.len() >= 2 {
            let joined = format!("{}_{}_{}", kw.text, next.text, args[1].text);
            if known(&joined) {
                return Some(format!("did you mean {joined}?"));
            }
        }
    }
    // Text glued before a keyword: usually a comment written without '#'.
    if let Some(k) = names
        .iter()
        .filter(|n| n.len() >= 3 && kw.text.len() > n.len() && kw.text.ends_with(*n))
        .max_by_key(|n| n.len())
    {
        let prefix = &kw.text[..kw.text.len() - k.len()];
        return Some(format!(
            "'{prefix}' runs into the keyword {k}: start a comment with '#' or '!' and put {k} on its own line"
        ));
    }
    // A near miss.
    if let Some(best) = closest(&kw.text, &names) {
        return Some(format!("did you mean {best}?"));
    }
    // A keyword of another block.
    if schema::all_names().contains(&kw.text.as_str()) {
        return Some(format!(
            "'{}' is a keyword, but not of this block: check the braces around it",
            kw.text
        ));
    }
    if !kw.text.is_ascii() {
        return Some("this looks like a comment: start comments with '#' or '!'".into());
    }
    None
}

/// The keyword that `kw` and the next word(s) make when joined (`TCP_` `CHECK`).
pub fn split_keyword(table: &'static [Kw], kw: &Token, args: &[Token]) -> Option<&'static str> {
    let names = schema::names(table);
    let next = args.first()?;
    for joined in [
        format!("{}{}", kw.text, next.text),
        format!("{}_{}", kw.text, next.text),
    ] {
        if let Some(n) = names.iter().find(|n| **n == joined) {
            return Some(n);
        }
    }
    None
}

/// For a leaf keyword followed by `{`: an argument that ends with a block keyword
/// (`weight 1TCP_CHECK {`) is two lines run together.
pub fn glued(args: &[Token]) -> Option<String> {
    let blocks = block_names();
    for (i, a) in args.iter().enumerate() {
        if let Some(k) = blocks
            .iter()
            .find(|k| a.text.len() > k.len() && a.text.ends_with(*k))
        {
            let head = &a.text[..a.text.len() - k.len()];
            return Some(format!("'{}' looks like '{head}' and the keyword {k} run together: put {k} on its own line", a.text));
        }
        // `节点权重TCP_ CHECK`: the keyword split by a space, and glued to text before it.
        if let Some(b) = args.get(i + 1) {
            let joined = format!("{}{}", a.text, b.text);
            if let Some(k) = blocks
                .iter()
                .find(|k| joined.ends_with(*k) && a.text.len() < joined.len() - k.len() + k.len())
            {
                if joined.len() >= k.len() && !a.text.ends_with(*k) {
                    return Some(format!("'{} {}' looks like the keyword {k} with a space in it: write {k} on its own line", a.text, b.text));
                }
            }
        }
    }
    None
}

fn block_names() -> Vec<&'static str> {
    fn walk(t: &'static [Kw], out: &mut Vec<&'static str>) {
        for k in t {
            if let Shape::Block(sub) = k.shape {
                if !out.contains(&k.name) {
                    out.push(k.name);
                }
                walk(sub, out);
            }
            if k.shape == Shape::List && !out.contains(&k.name) {
                out.push(k.name);
            }
        }
    }
    let mut v = Vec::new();
    walk(schema::ROOT, &mut v);
    v
}

/// The closest name by edit distance, if close enough to be a typo.
pub fn closest<'n>(word: &str, names: &[&'n str]) -> Option<&'n str> {
    let lw = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for n in names {
        if n.is_empty() {
            continue;
        }
        let d = levenshtein(&lw, &n.to_ascii_lowercase());
        let limit = (n.len() / 4).clamp(1, 3);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|b| b.1)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Loc;

    fn t(s: &str) -> Token {
        Token {
            text: s.into(),
            loc: Loc::default(),
            width: s.len(),
        }
    }

    #[test]
    fn split_keywords() {
        let h = hint(schema::ROOT, &t("virtual"), &[t("server"), t("1.2.3.4")]).unwrap();
        assert!(h.starts_with("did you mean virtual_server?"), "{h}");
    }

    #[test]
    fn distance() {
        assert_eq!(levenshtein("lb_algoo", "lb_algo"), 1);
        assert_eq!(
            closest("vrrp_instanse", &["vrrp_instance", "vrrp_script"]),
            Some("vrrp_instance")
        );
        assert_eq!(closest("xyz", &["vrrp_instance"]), None);
    }

    #[test]
    fn glued_comment() {
        let h = hint(schema::ROOT, &t("定义全局参数global_defs"), &[]).unwrap();
        assert!(h.contains("runs into the keyword global_defs"), "{h}");
    }

    #[test]
    fn glued_block() {
        let h = glued(&[t("1TCP_CHECK")]).unwrap();
        assert!(h.contains("'1' and the keyword TCP_CHECK"), "{h}");
    }
}

//! What rvs does with each of keepalived's keywords: applied (and the model value a
//! consumer reads), read but not applied (and what a user loses), or another keyword's
//! spelling. Each keyword's [`Support`] is declared with it in [`crate::schema`]. The
//! parser warns at every line whose keyword is not applied, `--strict` counts it, `rvs run`
//! logs it at start, and docs/keywords.md is generated from the schema
//! (`crates/rvs/tests/keywords.rs` checks both, and that every applied keyword is handled
//! by a loader and its value read outside the parser).

/// What rvs does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied as keepalived applies it. The model value it sets, `Struct.field`, which a
    /// consumer outside the parser reads; `-` with the reason for structure (a block whose
    /// contents are the point, a keyword applied inside the parser).
    Applied(&'static str),
    /// Read and checked, not acted on: what a user of the keyword loses.
    NotApplied(&'static str),
    /// Another keyword's spelling (deprecated or alternate): it does what that one does.
    Spelling(&'static str),
}

use crate::schema::{self, Kw, Shape};
use Support::{NotApplied, Spelling};

/// What rvs does with `kw` written in the block `block` opens (`""`: the top level).
pub fn support(block: &str, kw: &str) -> Option<Support> {
    schema::every_keyword()
        .into_iter()
        .find(|(b, k)| *b == block && k.name == kw)
        .map(|(_, k)| k.support)
}

/// Warns at every line whose keyword rvs reads but does not apply (`table`: the keywords
/// of the block the nodes are in, [`schema::ROOT`] at the top). Lists' lines are values,
/// not keywords; unknown keywords are reported by the tree builder.
pub fn warn_unapplied(
    nodes: &[crate::tree::Node],
    table: &'static [Kw],
    diags: &mut crate::diag::Diags,
) {
    for n in nodes {
        let Some(k) = schema::keyword(table, n.name()) else {
            continue;
        };
        match k.support {
            NotApplied(lost) => {
                diags.not_applied(
                    n.kw.loc,
                    n.kw.width,
                    format!("'{}' is not applied by rvs: {lost}", n.kw.text),
                );
            }
            Spelling(of) if of.ends_with("(not applied)") => {
                diags.not_applied(
                    n.kw.loc,
                    n.kw.width,
                    format!("'{}' ({of}) is not applied by rvs", n.kw.text),
                );
            }
            _ => {}
        }
        if let (crate::tree::Body::Block(children), Shape::Block(t)) = (&n.body, k.shape) {
            warn_unapplied(children, t, diags);
        }
    }
}

//! `rvs-conf`: the keepalived.conf front end of rvs.
//!
//! Pipeline: [`lex`] (keepalived's `read_line`: comments, `@` conditionals, `$` parameters,
//! `~SEQ`, `include`, brace splitting) → [`tree`] (a keyword tree guided by the [`schema`] of
//! every keyword keepalived knows) → [`load`] (typed [`model::Config`] with keepalived's
//! defaults and cross-block checks). Every problem is a located [`diag::Diagnostic`].
//!
//! Invariants: parsing never panics and always terminates (include depth, substitution
//! depth and generated lines are bounded); the returned model is usable even when there
//! are errors (a bad keyword is skipped with its default), so a daemon can decide itself
//! whether to refuse a config.

pub mod args;
pub mod diag;
pub mod lex;
pub mod load;
pub mod model;
pub mod schema;
pub mod suggest;
pub mod support;
pub mod tree;

use diag::{Diagnostic, Diags, SourceMap};
use std::path::Path;

pub use lex::LexOptions as Options;
pub use model::Config;

/// The result of parsing: the model, every diagnostic, and the sources they point into.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl Parsed {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
    /// Lines that could not be read as configuration at all (unknown keywords, binary
    /// data). keepalived skips them with a warning; a reload of a running daemon refuses
    /// such a file, since what the line meant is lost (a truncated or garbage file would
    /// otherwise remove running services).
    pub fn unreadable(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.unreadable).count()
    }
    /// Lines whose keyword rvs reads but does not act on (see [`support`]).
    pub fn unapplied(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.unapplied).count()
    }
    /// Whether keepalived's own `keepalived -t` would reject this configuration: it counts
    /// every reported configuration problem, including many that rvs only warns about.
    pub fn keepalived_rejects(&self) -> bool {
        self.diagnostics.iter().any(|d| d.keepalived_rejects)
    }
    /// All diagnostics rendered, in source order.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.sources))
            .collect()
    }
}

/// Parses a configuration file and everything it includes.
pub fn parse_file(path: &Path, opts: &Options) -> Parsed {
    run(opts, |lx| {
        lx.run_path(path, None);
    })
}

/// Parses configuration text; `path` names it in diagnostics and anchors relative includes.
pub fn parse_str(path: &Path, text: &str, opts: &Options) -> Parsed {
    run(opts, |lx| lx.run_text(path, text))
}

fn run(opts: &Options, f: impl FnOnce(&mut lex::Lexer<'_>)) -> Parsed {
    let mut sources = SourceMap::default();
    let mut diags = Diags::default();
    let items = {
        let mut lx = lex::Lexer::new(&mut sources, &mut diags, opts);
        f(&mut lx);
        std::mem::take(&mut lx.items)
    };
    let tree = tree::build(items, &mut diags);
    let config = load::load(&tree, &mut diags);
    support::warn_unapplied(&tree, schema::ROOT, &mut diags);
    diags.finish();
    let mut diagnostics = diags.list;
    diagnostics.sort_by_key(|d| (d.loc.file.0, d.loc.line, d.loc.col));
    Parsed {
        config,
        diagnostics,
        sources,
    }
}

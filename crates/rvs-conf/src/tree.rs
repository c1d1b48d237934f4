//! Logical lines → a tree of known keywords, guided by the keyword [`schema`].
//!
//! Unknown keywords are reported (with a suggestion) and skipped together with the block
//! that follows them, so one typo does not shift every later line into the wrong block.

use crate::diag::{Diagnostic, Diags, Loc};
use crate::lex::{Item, Token};
use crate::schema::{self, Kw, Shape};
use crate::suggest;

/// A keyword line, with its block if it has one.
#[derive(Debug, Clone)]
pub struct Node {
    pub kw: Token,
    pub args: Vec<Token>,
    /// Raw text of the line from the first argument on, when it has quotes or escapes
    /// (script strings re-parse it); see [`Node::rest`].
    pub raw_rest: Option<String>,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Block(Vec<Node>),
    /// Each list item is a node whose `kw` is the item's first word.
    List(Vec<Node>),
}

impl Node {
    pub fn loc(&self) -> Loc {
        self.kw.loc
    }
    /// The text after the keyword, as written (quotes and escapes kept).
    pub fn rest(&self) -> String {
        self.raw_rest.clone().unwrap_or_else(|| {
            self.args
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
    }
    pub fn name(&self) -> &str {
        &self.kw.text
    }
    pub fn children(&self) -> &[Node] {
        match &self.body {
            Body::Block(v) | Body::List(v) => v,
            Body::None => &[],
        }
    }
    /// All tokens of the line (keyword first).
    pub fn words(&self) -> impl Iterator<Item = &Token> {
        std::iter::once(&self.kw).chain(self.args.iter())
    }
}

/// Builds the tree from the lexer's items.
pub fn build(items: Vec<Item>, diags: &mut Diags) -> Vec<Node> {
    let mut b = Builder {
        items: items.into_iter().peekable(),
        diags,
    };
    let mut root = b.block(schema::ROOT, None);
    // Anything after an extra '}' at the root level continues at the root.
    while b.items.peek().is_some() {
        root.extend(b.block(schema::ROOT, None));
    }
    root
}

/// Consumes the lexer's items (tokens are moved into nodes, not copied).
struct Builder<'d> {
    items: std::iter::Peekable<std::vec::IntoIter<Item>>,
    diags: &'d mut Diags,
}

impl Builder<'_> {
    fn next(&mut self) -> Option<Item> {
        self.items.next()
    }

    fn peek_open(&mut self) -> bool {
        matches!(self.items.peek(), Some(Item::Open(_)))
    }

    /// Reads keyword lines until the matching `}` (or the end, at the root).
    /// `opener` is the keyword that opened this block (for "missing '}'").
    fn block(&mut self, table: &'static [Kw], opener: Option<&Token>) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            let Some(item) = self.next() else {
                // keepalived ends the block at the end of the file ("There are 1 missing
                // '}'s or extra '{'s") and runs what it read; so does rvs.
                if let Some(op) = opener {
                    self.diags
                        .unreadable(
                            op.loc,
                            op.width,
                            format!(
                                "missing '}}' at the end of the '{}' block: it ends at the end \
                                 of the file, as keepalived ends it",
                                op.text
                            ),
                        )
                        .hint("every '{' needs a matching '}'");
                }
                return out;
            };
            match item {
                Item::Close(loc) => {
                    if opener.is_none() {
                        // keepalived: "Extra '}' found", and it reads on.
                        self.diags.unreadable(
                            loc,
                            1,
                            "extra '}' found: ignored, as keepalived ignores it",
                        );
                        continue;
                    }
                    return out;
                }
                Item::Open(loc) => {
                    self.stray_open(loc, opener, "no keyword opens a block here");
                }
                Item::Words { tokens, rest } => {
                    if let Some(node) = self.node(table, tokens, rest, opener) {
                        out.push(node);
                    }
                }
            }
        }
    }

    /// A `{` that no keyword opens. keepalived says "Unexpected '{' - ignoring" and reads
    /// on: the lines after it belong to the enclosing block, and the next `}` ends that
    /// block. rvs gives the file the same meaning (a file keepalived runs, rvs runs), and
    /// says so where it happens; `--strict` and a reload count it as an unreadable line.
    fn stray_open(&mut self, loc: Loc, opener: Option<&Token>, why: &str) -> &mut Diagnostic {
        let then = opener.map_or_else(
            || "the lines after it are read at the top level".to_owned(),
            |o| {
                format!(
                    "the lines after it are read as part of the '{}' block, and the next '}}' \
                     ends that block",
                    o.text
                )
            },
        );
        self.diags
            .unreadable(
                loc,
                1,
                format!("unexpected '{{' ({why}): ignored, as keepalived ignores it; {then}"),
            )
            .hint("remove the '{' and its '}', or fix the keyword before it")
    }

    fn node(
        &mut self,
        table: &'static [Kw],
        mut tokens: Vec<Token>,
        rest: Option<String>,
        opener: Option<&Token>,
    ) -> Option<Node> {
        let kw = tokens.remove(0);
        let Some(shape) = schema::lookup(table, &kw.text) else {
            let d =
                self.diags
                    .unreadable(kw.loc, kw.width, format!("unknown keyword '{}'", kw.text));
            // A hint costs a search of every keyword: only for diagnostics that are shown.
            let shown = !d.suppressed;
            if shown {
                if let Some(h) = suggest::hint(table, &kw, &tokens) {
                    d.hint(h);
                }
            }
            if self.peek_open() {
                let loc = self.items_loc();
                self.items.next();
                let d = self.stray_open(loc, opener, &format!("'{}' is not a keyword", kw.text));
                if let Some(h) = suggest::glued(&tokens) {
                    d.hint(h);
                }
            }
            return None;
        };
        let body = match shape {
            Shape::Leaf => {
                if self.peek_open() {
                    let loc = self.items_loc();
                    self.items.next();
                    let d = self.stray_open(loc, opener, &format!("'{}' takes no block", kw.text));
                    if let Some(h) = suggest::glued(&tokens) {
                        d.hint(h);
                    }
                }
                Body::None
            }
            Shape::Block(sub) => {
                self.expect_open(&kw);
                Body::Block(self.block(sub, Some(&kw)))
            }
            Shape::List => {
                self.expect_open(&kw);
                Body::List(self.list(&kw))
            }
        };
        Some(Node {
            kw,
            args: tokens,
            raw_rest: rest,
            body,
        })
    }

    fn items_loc(&mut self) -> Loc {
        match self.items.peek() {
            Some(Item::Open(l) | Item::Close(l)) => *l,
            Some(Item::Words { tokens, .. }) => tokens[0].loc,
            None => Loc::default(),
        }
    }

    fn expect_open(&mut self, kw: &Token) {
        if self.peek_open() {
            self.items.next();
        } else {
            self.diags
                .error(
                    kw.loc,
                    kw.width,
                    format!("missing '{{' at the beginning of the '{}' block", kw.text),
                )
                .hint("put '{' after the keyword; the lines that follow are read as the block");
        }
    }

    /// A list block: every line up to the matching `}` is one item.
    fn list(&mut self, opener: &Token) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            match self.next() {
                None => {
                    self.diags.unreadable(
                        opener.loc,
                        opener.width,
                        format!(
                            "missing '}}' at the end of the '{}' block: it ends at the end of \
                             the file, as keepalived ends it",
                            opener.text
                        ),
                    );
                    return out;
                }
                Some(Item::Close(_)) => return out,
                Some(Item::Open(loc)) => {
                    self.diags.error(
                        loc,
                        1,
                        format!(
                            "unexpected '{{' inside the '{}' list; the block is skipped",
                            opener.text
                        ),
                    );
                    self.skip_block();
                }
                Some(Item::Words { mut tokens, rest }) => {
                    let kw = tokens.remove(0);
                    out.push(Node {
                        kw,
                        args: tokens,
                        raw_rest: rest,
                        body: Body::None,
                    });
                }
            }
        }
    }

    /// Skips to the `}` matching an already consumed `{`.
    fn skip_block(&mut self) {
        let mut depth = 1usize;
        while let Some(it) = self.next() {
            match it {
                Item::Open(_) => depth += 1,
                Item::Close(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                Item::Words { .. } => {}
            }
        }
    }
}

//! Diagnostics: every error and warning carries the place it points at, and renders as
//! `FILE:LINE:COL: error|warning: message`, then the source line, a caret, and a hint.

use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One source file as read (after include resolution, before any preprocessing).
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    text: String,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl SourceFile {
    /// Line `n` (1-based), without its line ending.
    pub fn line(&self, n: usize) -> Option<&str> {
        let start = *self.starts.get(n.checked_sub(1)?)?;
        let end = self.starts.get(n).map_or(self.text.len(), |e| e - 1);
        let l = self.text.get(start..end.max(start))?;
        Some(l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Every file the parser read, so a diagnostic can show its source line.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, text: &str) -> FileId {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files.push(Arc::new(SourceFile {
            path,
            text: text.to_owned(),
            starts,
        }));
        FileId(self.files.len() - 1)
    }

    pub fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0).map(AsRef::as_ref)
    }

    pub fn path(&self, id: FileId) -> &Path {
        self.file(id)
            .map_or(Path::new("<unknown>"), |f| f.path.as_path())
    }

    pub fn line(&self, loc: Loc) -> Option<&str> {
        self.file(loc.file)?.line(loc.line)
    }
}

/// Index of a file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct FileId(pub usize);

/// A place in a source file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Loc {
    #[serde(skip)]
    pub file: FileId,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A diagnostic. `keepalived_rejects` records whether keepalived's own `-t` treats the
/// same problem as a configuration error (keepalived counts many things that rvs only
/// warns about, such as unknown keywords or a missing `protocol`, as errors).
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Loc,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Length of the highlighted text, in characters (at least 1).
    #[serde(skip)]
    pub width: usize,
    pub keepalived_rejects: bool,
    /// The line could not be read as configuration at all (an unknown keyword, binary
    /// data): a reload refuses such a file rather than drop what the line meant.
    #[serde(skip)]
    pub unreadable: bool,
    /// A keyword rvs reads but does not act on (`crate::support`): `--strict` counts it.
    pub unapplied: bool,
    /// Over the file's cap ([`MAX_DIAGS_PER_FILE`]): counted, never shown (so callers
    /// can skip work such as computing a hint).
    #[serde(skip)]
    pub suppressed: bool,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic in the `FILE:LINE:COL: severity: message` form, followed
    /// by the source line with a caret under the offending text and the hint.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let path = sources.path(self.loc.file).display();
        let _ = writeln!(
            out,
            "{path}:{}:{}: {sev}: {}",
            self.loc.line, self.loc.col, self.message
        );
        if let Some(line) = sources.line(self.loc) {
            let line = line.replace('\t', " ");
            let gutter = self.loc.line.to_string();
            let pad = " ".repeat(gutter.len());
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{gutter} | {line}");
            let col = self.loc.col.max(1);
            let prefix: String = line
                .chars()
                .take(col - 1)
                .map(|c| if is_wide(c) { "  " } else { " " })
                .collect();
            let width: usize = line
                .chars()
                .skip(col - 1)
                .take(self.width.max(1))
                .map(|c| if is_wide(c) { 2 } else { 1 })
                .sum::<usize>()
                .max(1);
            let _ = writeln!(out, "{pad} | {prefix}{}", "^".repeat(width));
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "  = hint: {h}");
        }
        out
    }
}

/// East Asian wide characters take two terminal columns; the seed configs are full of
/// Chinese text, so carets must account for it.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF |
        0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF |
        0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// Most diagnostics kept per file; the rest are counted and summarised in one line (a
/// generated or garbage file can otherwise produce millions).
pub const MAX_DIAGS_PER_FILE: usize = 200;
/// Most diagnostics kept in all (a file included 10,000 times is 10,000 files).
pub const MAX_DIAGS: usize = 1_000;

/// Diagnostics of a file past [`MAX_DIAGS_PER_FILE`]: counted, not kept.
#[derive(Debug, Default, Clone, Copy)]
struct Suppressed {
    errors: usize,
    warnings: usize,
    keepalived_rejects: bool,
    unreadable: bool,
    unapplied: bool,
    last: Loc,
}

/// What a diagnostic counts for, besides its severity.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::struct_excessive_bools)]
struct Flags {
    keepalived_rejects: bool,
    unreadable: bool,
    unapplied: bool,
}

impl Flags {
    /// keepalived's `-t` counts it.
    const KA: Flags = Flags {
        keepalived_rejects: true,
        unreadable: false,
        unapplied: false,
    };
    const UNREADABLE: Flags = Flags {
        keepalived_rejects: true,
        unreadable: true,
        unapplied: false,
    };
    /// rvs's own advice.
    const ADVICE: Flags = Flags {
        keepalived_rejects: false,
        unreadable: false,
        unapplied: false,
    };
    const UNAPPLIED: Flags = Flags {
        keepalived_rejects: false,
        unreadable: false,
        unapplied: true,
    };
}

/// Collects diagnostics while parsing.
#[derive(Debug, Default)]
pub struct Diags {
    pub list: Vec<Diagnostic>,
    per_file: std::collections::HashMap<FileId, usize>,
    suppressed: std::collections::BTreeMap<usize, Suppressed>,
    /// Where a suppressed diagnostic is built (its hint is discarded with it).
    scratch: Option<Diagnostic>,
}

impl Diags {
    pub fn error(&mut self, loc: Loc, width: usize, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Error, Flags::KA, loc, width, message.into())
    }

    /// An error that is always shown, past every cap (a load that stopped early).
    pub fn fatal(&mut self, loc: Loc, width: usize, message: impl Into<String>) -> &mut Diagnostic {
        self.list.push(Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
            hint: None,
            width,
            keepalived_rejects: true,
            unreadable: false,
            unapplied: false,
            suppressed: false,
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// A line that cannot be read as configuration at all (an unknown keyword, binary
    /// data): a warning keepalived also reports, marked [`Diagnostic::unreadable`].
    pub fn unreadable(
        &mut self,
        loc: Loc,
        width: usize,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(
            Severity::Warning,
            Flags::UNREADABLE,
            loc,
            width,
            message.into(),
        )
    }

    /// A warning that keepalived's `-t` also counts as a configuration error.
    pub fn ka_warning(
        &mut self,
        loc: Loc,
        width: usize,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Warning, Flags::KA, loc, width, message.into())
    }

    /// A warning keepalived does not report (rvs-only advice).
    pub fn warning(
        &mut self,
        loc: Loc,
        width: usize,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Warning, Flags::ADVICE, loc, width, message.into())
    }

    /// A keyword rvs reads but does not act on: a warning keepalived does not give,
    /// marked [`Diagnostic::unapplied`] (`--strict` counts it).
    pub fn not_applied(
        &mut self,
        loc: Loc,
        width: usize,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(
            Severity::Warning,
            Flags::UNAPPLIED,
            loc,
            width,
            message.into(),
        )
    }

    fn push(
        &mut self,
        severity: Severity,
        flags: Flags,
        loc: Loc,
        width: usize,
        message: String,
    ) -> &mut Diagnostic {
        let d = Diagnostic {
            severity,
            loc,
            message,
            hint: None,
            width,
            keepalived_rejects: flags.keepalived_rejects,
            unreadable: flags.unreadable,
            unapplied: flags.unapplied,
            suppressed: false,
        };
        let n = self.per_file.entry(loc.file).or_default();
        *n += 1;
        // Past the overall cap, everything is counted under one summary (file 0's key is
        // not used for that: usize::MAX sorts last).
        let key = if self.list.len() >= MAX_DIAGS {
            usize::MAX
        } else {
            loc.file.0
        };
        if *n > MAX_DIAGS_PER_FILE || key == usize::MAX {
            let s = self.suppressed.entry(key).or_default();
            match severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
            }
            s.keepalived_rejects |= flags.keepalived_rejects;
            s.unreadable |= flags.unreadable;
            s.unapplied |= flags.unapplied;
            s.last = s.last.max_by_line(loc);
            return self.scratch.insert(Diagnostic {
                suppressed: true,
                ..d
            });
        }
        self.list.push(d);
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// Adds, for each file that had more than [`MAX_DIAGS_PER_FILE`] diagnostics, one that
    /// counts the rest (an error if any of them was). Call once, after parsing.
    pub fn finish(&mut self) {
        for (key, s) in std::mem::take(&mut self.suppressed) {
            let place = if key == usize::MAX {
                "in all the files"
            } else {
                "in this file"
            };
            let severity = if s.errors > 0 {
                Severity::Error
            } else {
                Severity::Warning
            };
            self.list.push(Diagnostic {
                severity,
                loc: s.last,
                message: format!(
                    "{} more diagnostics {place} are not shown ({} errors, {} warnings)",
                    s.errors + s.warnings,
                    s.errors,
                    s.warnings
                ),
                hint: Some(format!(
                    "at most {MAX_DIAGS_PER_FILE} are shown per file and {MAX_DIAGS} in all; fix the first ones"
                )),
                width: 1,
                keepalived_rejects: s.keepalived_rejects,
                unreadable: s.unreadable,
                unapplied: s.unapplied,
                suppressed: false,
            });
        }
    }
}

impl Loc {
    /// The later of two places (by line, then column).
    fn max_by_line(self, other: Loc) -> Loc {
        if (other.line, other.col) >= (self.line, self.col) {
            other
        } else {
            self
        }
    }
}

impl Diagnostic {
    pub fn hint(&mut self, hint: impl Into<String>) -> &mut Self {
        self.hint = Some(hint.into());
        self
    }
}

//! The lexical layer of keepalived.conf (keepalived's `lib/parser.c` `read_line`):
//! physical lines → comments removed → `@` conditionals → `$` definitions and substitution
//! → `~SEQ`/`~LST` → `include` → brace splitting → tokens.
//!
//! Every character keeps the column it came from, so a diagnostic points into the source
//! line even after comments are removed; text produced by substitution points at the `$`.

use crate::diag::{Diags, FileId, Loc, SourceMap};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// keepalived reads lines into a 1024-byte buffer (`MAXBUF`); longer lines are cut.
pub const MAXBUF: usize = 1024;
/// Deepest include nesting accepted (keepalived has no limit; a loop would never end).
pub const MAX_INCLUDE_DEPTH: usize = 32;
/// Deepest `$` substitution accepted (a self-referencing definition would never end).
pub const MAX_SUBST_DEPTH: usize = 32;
/// Most lines that `$` substitution, `~SEQ`/`~LST` and multi-line definitions may
/// generate in one load (a self-referencing definition otherwise expands exponentially
/// until this bound: it is the work, memory and diagnostics such a file can cost).
pub const MAX_GENERATED_LINES: usize = 250_000;
/// Longest line `$` substitution may produce (a doubling definition would exhaust memory).
pub const MAX_SUBST_LEN: usize = 64 * 1024;
/// Largest file read (a configuration file, or one it includes): 16 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Most bytes read in one load, over every file: 64 MiB.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Most files read in one load (the same file included twice counts twice): bounds
/// include fan-out such as k files each including `*`, which grows as k!.
pub const MAX_FILES: usize = 10_000;

/// A character with the column (1-based, in characters) it came from.
type Ch = (char, u32);

/// Why a configuration file was not read.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    /// Not a regular file (a FIFO, socket or device): only the top-level file may be.
    NotRegular(&'static str),
    /// Larger than the bound given to [`read_bounded`].
    TooLarge,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(kind) => write!(
                f,
                "it is a {kind}, not a regular file (an include must be a file: a {kind} can block or never end)"
            ),
            ReadError::TooLarge => write!(
                f,
                "it is larger than {} MiB",
                MAX_FILE_BYTES >> 20
            ),
        }
    }
}

/// Reads at most `max` bytes of `path` (`TooLarge` beyond). An include must be a regular
/// file: it is opened non-blocking (a FIFO swapped in after the check cannot block the
/// open) and checked again on the open file.
fn read_bounded(path: &Path, include: bool, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let kind = |t: std::fs::FileType| -> Option<&'static str> {
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("directory")
        } else if t.is_fifo() {
            Some("FIFO")
        } else if t.is_socket() {
            Some("socket")
        } else if t.is_char_device() {
            Some("character device")
        } else if t.is_block_device() {
            Some("block device")
        } else {
            Some("special file")
        }
    };
    if include {
        let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
        if let Some(k) = kind(meta.file_type()) {
            return Err(ReadError::NotRegular(k));
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    if include {
        opts.custom_flags(i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0));
    }
    let f = opts.open(path).map_err(ReadError::Io)?;
    if include {
        let meta = f.metadata().map_err(ReadError::Io)?;
        if let Some(k) = kind(meta.file_type()) {
            return Err(ReadError::NotRegular(k));
        }
    }
    let mut bytes = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// A token of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub loc: Loc,
    /// Width in source characters (for carets).
    pub width: usize,
}

/// One logical line: a `{`, a `}`, or words.
#[derive(Debug, Clone)]
pub enum Item {
    Open(Loc),
    Close(Loc),
    /// The tokens, and the raw text of the line (after preprocessing) from the start of
    /// the second token when it has quotes or escapes: script keywords re-parse it with
    /// shell-like quoting.
    Words {
        tokens: Vec<Token>,
        rest: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct LexOptions {
    /// keepalived's `-i/--config-id`; `@ID` lines are kept only when it matches.
    /// Default: the host name up to the first dot.
    pub config_id: Option<String>,
    /// Most lines `~SEQ`/`~LST` and substitution may generate (default
    /// [`MAX_GENERATED_LINES`]); fuzzing lowers it to keep cases fast.
    pub max_generated_lines: usize,
}

impl Default for LexOptions {
    fn default() -> Self {
        LexOptions {
            config_id: None,
            max_generated_lines: MAX_GENERATED_LINES,
        }
    }
}

#[derive(Debug, Clone)]
struct Def {
    /// Lines of the value (more than one for a multi-line definition).
    lines: Vec<String>,
}

/// Runs the lexer over a file and the files it includes.
pub struct Lexer<'a> {
    sources: &'a mut SourceMap,
    diags: &'a mut Diags,
    defs: HashMap<String, Def>,
    stack: Vec<PathBuf>,
    config_id: String,
    generated: usize,
    /// The physical line being read ends with `\` before its comment is removed:
    /// keepalived continues a multi-line definition on that (`# text \` and
    /// `value # text \` both continue it).
    raw_continues: bool,
    random_state: u64,
    max_lines: usize,
    cur_loc: Loc,
    /// Files and bytes read so far in this load; `exhausted` once a budget is spent (the
    /// error is reported once, and nothing more is read).
    files_read: usize,
    bytes_read: u64,
    exhausted: bool,
    /// `include_check`'s checks (`INCLUDE_*` bits), for the includes after it in the
    /// file that set them and the files it includes, as keepalived keeps them.
    include_check: u8,
    pub items: Vec<Item>,
}

/// keepalived's include checks: an unreadable match (a directory, an executable), no
/// file for a name without wildcards, no file for a wildcard, a brace alternative
/// missing. A failed check a file's `include` kind or `include_check` asks for is a
/// configuration error; otherwise it is a warning.
const INCLUDE_R: u8 = 1;
const INCLUDE_M: u8 = 2;
const INCLUDE_W: u8 = 4;
const INCLUDE_B: u8 = 8;

impl<'a> Lexer<'a> {
    pub fn new(sources: &'a mut SourceMap, diags: &'a mut Diags, opts: &LexOptions) -> Self {
        let config_id = opts.config_id.clone().unwrap_or_else(default_config_id);
        Lexer {
            sources,
            diags,
            defs: HashMap::new(),
            stack: Vec::new(),
            config_id,
            generated: 0,
            raw_continues: false,
            random_state: Self::RANDOM_DEFAULT,
            max_lines: opts.max_generated_lines,
            cur_loc: Loc::default(),
            files_read: 0,
            bytes_read: 0,
            exhausted: false,
            include_check: 0,
            items: Vec::new(),
        }
    }

    /// Lexes a file given as text (the path names it in diagnostics and anchors includes).
    pub fn run_text(&mut self, path: &Path, text: &str) {
        let id = self.sources.add(path.to_path_buf(), text);
        self.stack.push(canonical(path));
        self.lex_file(id, path, text);
        self.stack.pop();
    }

    /// Lexes a file from disk. `from` is the include line that named it, if any.
    ///
    /// Reading is bounded: an included file must be a regular file (a FIFO would block
    /// the reader, a device such as /dev/zero never ends), no file may exceed
    /// [`MAX_FILE_BYTES`], and one load reads at most [`MAX_FILES`] files and
    /// [`MAX_TOTAL_BYTES`] bytes. The top-level file may be a pipe or device the operator
    /// named (`-f <(generate)`), still within the size bound.
    pub fn run_path(&mut self, path: &Path, from: Option<Loc>) -> bool {
        if self.exhausted {
            return false;
        }
        let loc = from.unwrap_or_else(|| Loc {
            file: self.sources.add(path.to_path_buf(), ""),
            line: 0,
            col: 0,
        });
        if self.files_read >= MAX_FILES {
            return self.exhaust(loc, &format!("more than {MAX_FILES} files read"));
        }
        self.files_read += 1;
        let budget = MAX_FILE_BYTES.min(MAX_TOTAL_BYTES.saturating_sub(self.bytes_read));
        match read_bounded(path, from.is_some(), budget) {
            Ok(bytes) => {
                self.bytes_read += bytes.len() as u64;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.run_text(path, &text);
                true
            }
            Err(ReadError::TooLarge) if budget < MAX_FILE_BYTES => self.exhaust(
                loc,
                &format!(
                    "more than {} MiB read in all (at '{}')",
                    MAX_TOTAL_BYTES >> 20,
                    path.display()
                ),
            ),
            Err(e) => {
                let msg = format!("cannot read configuration file '{}': {e}", path.display());
                self.diags.error(loc, 1, msg);
                false
            }
        }
    }

    /// Reports that one load's budget is spent; nothing more is read.
    fn exhaust(&mut self, loc: Loc, what: &str) -> bool {
        self.exhausted = true;
        self.diags
            .fatal(
                loc,
                1,
                format!("configuration too large: {what}; the rest is not read"),
            )
            .hint("an include pattern probably matches the files that include it (a fan-out), or includes a huge file");
        false
    }

    fn lex_file(&mut self, id: FileId, path: &Path, text: &str) {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut multiline: Option<String> = None;
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let loc0 = Loc {
                file: id,
                line: line_no,
                col: 1,
            };
            if raw.contains('\0') {
                self.diags
                    .unreadable(loc0, 1, "line contains a NUL byte and is ignored");
                continue;
            }
            let raw = self.cut_long_line(raw, loc0);
            let raw_continues = raw.trim_end().ends_with('\\');
            let mut chars = decomment_str(raw);
            // Continuation lines of a multi-line definition. keepalived looks for the `\`
            // before it removes the comment: a commented-out line ending in `\` (a block
            // commented out inside the definition) does not end it.
            if let Some(name) = multiline.clone() {
                let cont = raw_continues;
                if ends_with_backslash(&chars) {
                    chars = trim(&chars).to_vec();
                    chars.pop();
                }
                let s: String = trim(&chars).iter().map(|c| c.0).collect();
                if let Some(d) = self.defs.get_mut(&name) {
                    if !s.is_empty() {
                        d.lines.push(s);
                    }
                }
                if !cont {
                    multiline = None;
                }
                continue;
            }
            let line = trim(&chars);
            if line.is_empty() {
                continue;
            }
            self.raw_continues = raw_continues;
            if let Some(name) = self.process_line(line, &dir, loc0, 0) {
                multiline = Some(name);
            }
        }
    }

    /// keepalived reads with `fgets` into a 1024-byte buffer: a longer line is reported,
    /// its first 1023-byte pieces are dropped, and the rest is read as a line of its own.
    fn cut_long_line<'s>(&mut self, raw: &'s str, loc: Loc) -> &'s str {
        let max = MAXBUF - 1;
        if raw.len() < max {
            return raw;
        }
        self.diags
            .ka_warning(loc, 1, format!("line too long (over {max} bytes): its first {max}-byte pieces are ignored, as keepalived does"))
            .hint("split the line; keepalived reads at most 1023 bytes per line");
        let mut cut = (raw.len() / max) * max;
        while cut < raw.len() && !raw.is_char_boundary(cut) {
            cut += 1;
        }
        &raw[cut.min(raw.len())..]
    }

    /// Handles one trimmed, decommented line. Returns the name of a multi-line
    /// definition that continues on the next physical line.
    fn process_line(
        &mut self,
        mut line: &[Ch],
        dir: &Path,
        loc0: Loc,
        depth: usize,
    ) -> Option<String> {
        let at = |c: u32| Loc {
            col: c as usize,
            ..loc0
        };
        if depth > MAX_SUBST_DEPTH {
            let col = line.first().map_or(1, |c| c.1);
            self.diags
                .error(at(col), 1, "parameter substitution nested too deeply")
                .hint("a $definition probably refers to itself");
            return None;
        }
        // Lines made by `$` substitution and `~SEQ`/`~LST` count against the expansion
        // budget; a file's own lines are bounded by the bytes read.
        if depth > 0 {
            self.generated += 1;
        }
        if self.generated > self.max_lines {
            if self.generated == self.max_lines + 1 {
                self.generated += 1;
                self.diags.error(
                    loc0,
                    1,
                    format!(
                        "configuration expands to more than {} lines; stopping",
                        self.max_lines
                    ),
                );
            }
            return None;
        }
        // @ conditional lines.
        if line.first().map(|c| c.0) == Some('@') {
            let neg = line.get(1).map(|c| c.0) == Some('^');
            let start = if neg { 2 } else { 1 };
            let Some(sp) = line.iter().position(|c| c.0 == ' ' || c.0 == '\t') else {
                return None; // nothing after the id: dropped
            };
            let id: String = line[start..sp].iter().map(|c| c.0).collect();
            if (id == self.config_id) == neg {
                return None;
            }
            line = trim(&line[sp..]);
            if line.is_empty() {
                return None;
            }
        }
        let first = line.first().map_or(' ', |c| c.0);
        // Plain lines (the vast majority) go straight to the tokenizer without building a
        // String of the line.
        let has_dollar = line.iter().any(|c| c.0 == '$');
        if first != '$' && first != '~' && !has_dollar && first != 'i' {
            self.emit(line, loc0);
            return None;
        }
        let text: String = line.iter().map(|c| c.0).collect();
        // $NAME=VALUE definitions.
        if let Some((name, value)) = parse_definition(&text) {
            if name.starts_with('_') {
                self.diags.ka_warning(
                    at(line[0].1),
                    name.len() + 1,
                    format!("parameter names starting with '_' are reserved: ${name}"),
                );
                return None;
            }
            let mut value = value.to_owned();
            let multi = value.ends_with('\\') || (depth == 0 && self.raw_continues);
            if multi {
                if value.ends_with('\\') {
                    value.pop();
                }
                let v = value.trim_end().to_owned();
                let lines = if v.is_empty() { vec![] } else { vec![v] };
                self.defs.insert(name.to_owned(), Def { lines });
                return Some(name.to_owned());
            }
            self.defs
                .insert(name.to_owned(), Def { lines: vec![value] });
            return None;
        }
        // ~SEQ / ~LST generators.
        if text.starts_with("~SEQ") || text.starts_with("~LST") {
            self.expand_generator(line, dir, loc0, depth);
            return None;
        }
        if text.starts_with('~') {
            self.diags.ka_warning(
                at(line[0].1),
                1,
                "unknown '~' directive; the line is ignored",
            );
            return None;
        }
        // $ substitution.
        if has_dollar {
            self.cur_loc = loc0;
            if let Some(lines) = self.substitute(line, dir) {
                for l in lines {
                    let l = decomment(&l);
                    let l = trim(&l);
                    // keepalived strips comments after substitution: a line that now starts
                    // with '#' or '!' (`$OFF=${_HASH}` then `$OFF keyword …`) is a comment.
                    if matches!(l.first(), Some(('#' | '!', _))) {
                        continue;
                    }
                    if !l.is_empty() {
                        self.process_line(l, dir, loc0, depth + 1);
                    }
                }
                return None;
            }
        }
        // include.
        if let Some(kind) = include_kind(&text) {
            self.include(kind, line, dir, loc0);
            return None;
        }
        self.emit(line, loc0);
        None
    }

    /// Replaces `$NAME`, `${NAME}` and the built-ins. Returns None when nothing changed.
    fn substitute(&mut self, line: &[Ch], dir: &Path) -> Option<Vec<Vec<Ch>>> {
        let mut out: Vec<Ch> = Vec::new();
        let mut changed = false;
        let mut i = 0;
        while i < line.len() {
            let (c, col) = line[i];
            if c != '$' {
                out.push((c, col));
                i += 1;
                continue;
            }
            // ${...}
            if line.get(i + 1).map(|c| c.0) == Some('{') {
                if let Some(end) = line[i + 2..].iter().position(|c| c.0 == '}') {
                    let inner: String = line[i + 2..i + 2 + end].iter().map(|c| c.0).collect();
                    if let Some(val) = self.lookup(&inner, dir) {
                        out.extend(val.chars().map(|ch| (ch, col)));
                        changed = true;
                        i += end + 3;
                        continue;
                    }
                }
                out.push((c, col));
                i += 1;
                continue;
            }
            // $NAME followed by whitespace or end of line
            let mut j = i + 1;
            while j < line.len() && (line[j].0.is_ascii_alphanumeric() || line[j].0 == '_') {
                j += 1;
            }
            let ends_ok = j == line.len() || line[j].0 == ' ' || line[j].0 == '\t';
            if j > i + 1 && ends_ok {
                let name: String = line[i + 1..j].iter().map(|c| c.0).collect();
                if let Some(val) = self.lookup(&name, dir) {
                    out.extend(val.chars().map(|ch| (ch, col)));
                    changed = true;
                    i = j;
                    continue;
                }
            }
            out.push((c, col));
            i += 1;
        }
        if !changed {
            return None;
        }
        if out.len() > MAX_SUBST_LEN {
            let col = line.first().map_or(1, |c| c.1) as usize;
            self.diags
                .error(Loc { col, ..self.cur_loc }, 1, format!("parameter substitution makes a line longer than {MAX_SUBST_LEN} characters; the line is dropped"))
                .hint("a $definition probably refers to itself");
            return Some(Vec::new());
        }
        // A multi-line value splits the line.
        let mut lines = vec![Vec::new()];
        for ch in out {
            if ch.0 == '\n' {
                lines.push(Vec::new());
            } else if let Some(last) = lines.last_mut() {
                last.push(ch);
            }
        }
        Some(lines)
    }

    fn lookup(&mut self, name: &str, dir: &Path) -> Option<String> {
        let mut parts = name.split_whitespace();
        let head = parts.next()?;
        match head {
            // The directory of the file being read; a file named without one (`-f
            // keepalived.conf`) is in the current directory (it was empty, so
            // `${_PWD}/conf.d` became `/conf.d`).
            "_PWD" if dir.as_os_str().is_empty() => Some(
                std::env::current_dir()
                    .map_or_else(|_| ".".to_owned(), |d| d.display().to_string()),
            ),
            "_PWD" => Some(dir.display().to_string()),
            "_INSTANCE" => Some(self.config_id.clone()),
            // Escaped, so that the comment stripping after substitution keeps them.
            "_HASH" => Some("\\#".into()),
            "_BANG" => Some("\\!".into()),
            "_ENV" => parts.next().map(|v| std::env::var(v).unwrap_or_default()),
            "_RANDOM" => {
                let min: i64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let max: i64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(32767);
                Some(self.random(min, max).to_string())
            }
            _ if name.contains(char::is_whitespace) => None,
            _ => self.defs.get(name).map(|d| d.lines.join("\n")),
        }
    }

    /// The default generator state (no `random_seed`).
    const RANDOM_DEFAULT: u64 = 0x853c_49e6_748f_ea9b;

    fn random(&mut self, min: i64, max: i64) -> i64 {
        // xorshift64*: deterministic, so a config checks the same way every time.
        let mut x = self.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if max <= min {
            return min;
        }
        let span = u64::try_from(max - min + 1).unwrap_or(1);
        min + i64::try_from(r % span).unwrap_or(0)
    }

    fn expand_generator(&mut self, line: &[Ch], dir: &Path, loc0: Loc, depth: usize) {
        let text: String = line.iter().map(|c| c.0).collect();
        let at = Loc {
            col: line[0].1 as usize,
            ..loc0
        };
        let Some(close) = text.find(')') else {
            self.diags.ka_warning(
                at,
                text.len(),
                format!("invalid {} specification: no ')'", &text[..4]),
            );
            return;
        };
        let Some(open) = text.find('(').filter(|o| *o < close) else {
            self.diags.ka_warning(
                at,
                text.len(),
                format!("invalid {} specification: no '(' before ')'", &text[..4]),
            );
            return;
        };
        let kind = &text[..open];
        let args = &text[open + 1..close];
        // Characters after ')' (keep columns).
        let rest_start = text[..=close].chars().count();
        let rest = trim(&line[rest_start..]);
        let iterations: Option<Vec<Vec<(String, String)>>> = match kind {
            "~SEQ" | "~SEQx" => parse_seq(args, kind == "~SEQx"),
            "~LST" => parse_lst(args),
            _ => None,
        };
        let Some(iterations) = iterations else {
            self.diags
                .ka_warning(
                    at,
                    text.chars().count().min(close + 1),
                    format!("invalid {kind} specification '{}'", &text[..=close]),
                )
                .hint("forms: ~SEQ(var, start, step, end), ~SEQ(var, end), ~LST(var, v1, v2, ...)");
            return;
        };
        for binding in iterations {
            if self.generated > self.max_lines {
                return;
            }
            for (k, v) in binding {
                self.defs.insert(k, Def { lines: vec![v] });
            }
            if !rest.is_empty() {
                self.process_line(rest, dir, loc0, depth + 1);
            }
        }
    }

    /// A failed include check: an error if `checks` asks for `what`, else a warning.
    fn include_failed(&mut self, checks: u8, what: u8, at: Loc, width: usize, msg: String) {
        if checks & what != 0 {
            self.diags.error(at, width, msg);
        } else {
            self.diags.warning(at, width, msg);
        }
    }

    /// `include_check [[+|-]read|match|wildcard_match|brace_match …]` (keepalived's
    /// `include_check_set`): no option sets every check; a bare option sets `read` and it
    /// (first word only), `+`/`-` add or remove one.
    fn set_include_check(&mut self, line: &[Ch], loc0: Loc) {
        // The words of the line with their columns.
        let words: Vec<(String, usize)> = line
            .split(|c| is_space(c.0))
            .filter(|w| !w.is_empty())
            .map(|w| (w.iter().map(|c| c.0).collect(), w[0].1 as usize))
            .collect();
        if words.len() <= 1 {
            self.include_check = INCLUDE_R | INCLUDE_M | INCLUDE_W | INCLUDE_B;
            return;
        }
        for (i, (w, col)) in words.iter().enumerate().skip(1) {
            let at = Loc { col: *col, ..loc0 };
            let (sign, name) = match w.as_bytes().first() {
                Some(b'+') => (1, &w[1..]),
                Some(b'-') => (-1, &w[1..]),
                _ => (0, w.as_str()),
            };
            if sign == 0 && i > 1 {
                self.diags.ka_warning(
                    at,
                    w.chars().count(),
                    format!("Duplicate include_check '{w}' specified - ignoring"),
                );
                continue;
            }
            if sign == 0 {
                self.include_check = 0;
            }
            let flag = match name {
                "read" => INCLUDE_R,
                "match" => INCLUDE_M,
                "wildcard_match" => INCLUDE_W,
                "brace_match" => INCLUDE_B,
                _ => {
                    self.diags.ka_warning(
                        at,
                        w.chars().count(),
                        format!("Unknown include_check type '{name}' - ignoring"),
                    );
                    continue;
                }
            };
            match sign {
                0 => self.include_check = INCLUDE_R | flag,
                1 => self.include_check |= flag,
                _ => self.include_check &= !flag,
            }
        }
    }

    fn include(&mut self, kind: IncludeKind, line: &[Ch], dir: &Path, loc0: Loc) {
        let checks = self.include_check | kind.checks();
        let kw_len = kind.keyword().chars().count();
        let arg: Vec<Ch> = trim(&line[kw_len..]).to_vec();
        let col = arg.first().map_or(line[0].1, |c| c.1) as usize;
        let at = Loc { col, ..loc0 };
        let pattern: String = arg.iter().map(|c| c.0).collect();
        let pattern = pattern.trim_matches('"').to_owned();
        if pattern.is_empty() {
            self.diags
                .ka_warning(at, 1, format!("'{}' needs a file name", kind.keyword()));
            return;
        }
        let width = pattern.chars().count();
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                at,
                width,
                format!(
                    "includes nested deeper than {MAX_INCLUDE_DEPTH} levels: '{pattern}' not read"
                ),
            );
            return;
        }
        let full = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            dir.join(&pattern)
        };
        let mut files = Vec::new();
        let mut had_wildcard = false;
        // Names without wildcards that are not there, and wildcards whose directory is
        // not (keepalived's missing files and directories).
        let mut missing = 0;
        let alternatives = brace_expand(&full.display().to_string());
        let braced = alternatives.len() > 1;
        for p in &alternatives {
            if p.contains(['*', '?', '[']) {
                had_wildcard = true;
                let fixed = p[..p.find(['*', '?', '[']).unwrap_or(p.len())]
                    .rsplit_once('/')
                    .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                if !Path::new(fixed).is_dir() {
                    missing += 1;
                    continue;
                }
                match glob::glob(p) {
                    Ok(paths) => files.extend(paths.flatten()),
                    Err(e) => {
                        self.diags.error(
                            at,
                            width,
                            format!("invalid include pattern '{pattern}': {e}"),
                        );
                        return;
                    }
                }
            } else if Path::new(p).exists() {
                files.push(PathBuf::from(p));
            } else {
                missing += 1;
            }
        }
        if files.is_empty() {
            if missing > 0 {
                let what = if braced { INCLUDE_B } else { INCLUDE_M };
                let msg = if braced {
                    format!("include '{pattern}': config files missing")
                } else {
                    format!("include '{pattern}' does not exist")
                };
                self.include_failed(checks, what, at, width, msg);
            } else if had_wildcard {
                let msg = format!("include '{pattern}' matches no file");
                self.include_failed(checks, INCLUDE_W, at, width, msg);
            }
            return;
        }
        if missing > 0 {
            let msg = format!("include '{pattern}': some config files missing");
            self.include_failed(checks, INCLUDE_B, at, width, msg);
            if checks & INCLUDE_B != 0 {
                return;
            }
        }
        files.sort();
        files.dedup();
        for f in files {
            let canon = canonical(&f);
            if self.stack.contains(&canon) {
                self.diags
                    .error(
                        at,
                        width,
                        format!("include loop: '{}' includes itself", f.display()),
                    )
                    .hint(format!(
                        "include chain: {}",
                        self.stack
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ));
                continue;
            }
            if f.is_dir() {
                let msg = format!("include '{}' is a directory - skipping", f.display());
                self.include_failed(checks, INCLUDE_R, at, width, msg);
                continue;
            }
            // keepalived reads no executable file (a script named by mistake).
            let exec = std::fs::metadata(&f).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            });
            if exec {
                let msg = format!(
                    "include '{}' is not a regular non-executable file - skipping",
                    f.display()
                );
                self.include_failed(checks, INCLUDE_R, at, width, msg);
                continue;
            }
            // Checks set inside an included file end with it.
            let saved = self.include_check;
            self.run_path(&f, Some(at));
            self.include_check = saved;
        }
    }

    /// Splits a line at braces (outside double quotes) and tokenizes the pieces.
    fn emit(&mut self, line: &[Ch], loc0: Loc) {
        // `random_seed N` seeds the `${_RANDOM}` of the lines after it, as keepalived's
        // srandom() does when it reads the keyword.
        let word: String = line
            .iter()
            .map(|c| c.0)
            .take_while(|c| !c.is_whitespace())
            .collect();
        if word == "include_check" {
            self.set_include_check(line, loc0);
        }
        if word == "random_seed" {
            let rest: String = line.iter().map(|c| c.0).skip(word.len()).collect();
            if let Some(seed) = rest
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u64>().ok())
            {
                self.random_state = seeded(seed);
            }
        }
        let mut start = 0;
        let mut in_quote = false;
        let mut i = 0;
        while i < line.len() {
            let c = line[i].0;
            if c == '"' {
                in_quote = !in_quote;
            } else if !in_quote && (c == '{' || c == '}') {
                self.words(&line[start..i], loc0);
                let loc = Loc {
                    col: line[i].1 as usize,
                    ..loc0
                };
                self.items.push(if c == '{' {
                    Item::Open(loc)
                } else {
                    Item::Close(loc)
                });
                start = i + 1;
            }
            i += 1;
        }
        self.words(&line[start..], loc0);
    }

    fn words(&mut self, piece: &[Ch], loc0: Loc) {
        let piece = trim(piece);
        if piece.is_empty() {
            return;
        }
        let mut tokens = Vec::new();
        // The raw rest of the line matters only for script strings with quotes or escapes;
        // otherwise the tokens joined by spaces say the same.
        let needs_raw = piece.iter().any(|c| matches!(c.0, '"' | '\'' | '\\'));
        let mut rest = None;
        let mut i = 0;
        while i < piece.len() {
            let (c, col) = piece[i];
            if is_space(c) {
                i += 1;
                continue;
            }
            if tokens.len() == 1 && rest.is_none() && needs_raw {
                rest = Some(piece[i..].iter().map(|c| c.0).collect());
            }
            let loc = Loc {
                col: col as usize,
                ..loc0
            };
            if c == '"' {
                if let Some(end) = piece[i + 1..].iter().position(|c| c.0 == '"') {
                    let text = piece[i + 1..i + 1 + end].iter().map(|c| c.0).collect();
                    tokens.push(Token {
                        text,
                        loc,
                        width: end + 2,
                    });
                    i += end + 2;
                } else {
                    self.diags.error(loc, piece.len() - i, "unmatched quote");
                    let text = piece[i + 1..].iter().map(|c| c.0).collect();
                    tokens.push(Token {
                        text,
                        loc,
                        width: piece.len() - i,
                    });
                    i = piece.len();
                }
                continue;
            }
            let mut j = i;
            while j < piece.len() && !is_space(piece[j].0) {
                j += 1;
            }
            let text = piece[i..j].iter().map(|c| c.0).collect();
            tokens.push(Token {
                text,
                loc,
                width: j - i,
            });
            i = j;
        }
        if !tokens.is_empty() {
            self.items.push(Item::Words { tokens, rest });
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c' | '\x0b' | '\r' | '\n')
}

fn trim(s: &[Ch]) -> &[Ch] {
    let start = s.iter().position(|c| !is_space(c.0)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !is_space(c.0))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn ends_with_backslash(s: &[Ch]) -> bool {
    trim(s).last().map(|c| c.0) == Some('\\')
}

/// [`decomment`] of a source line, numbering its characters from column 1.
fn decomment_str(raw: &str) -> Vec<Ch> {
    let chars: Vec<Ch> = raw.chars().zip(1u32..).collect();
    if !chars.iter().any(|c| matches!(c.0, '#' | '!' | '"' | '\\')) {
        return chars;
    }
    decomment(&chars)
}

/// Removes a `#`/`!` comment (outside double quotes) and turns `\#`/`\!` into the literal.
fn decomment(line: &[Ch]) -> Vec<Ch> {
    let mut out = Vec::with_capacity(line.len());
    let mut in_quote = false;
    let mut i = 0;
    while i < line.len() {
        let (c, col) = line[i];
        if c == '"' {
            in_quote = !in_quote;
        } else if !in_quote {
            if c == '\\' && matches!(line.get(i + 1).map(|c| c.0), Some('#' | '!')) {
                out.push(line[i + 1]);
                i += 2;
                continue;
            }
            if c == '#' || c == '!' {
                break;
            }
        }
        out.push((c, col));
        i += 1;
    }
    out
}

/// `$NAME=VALUE`: NAME is `[A-Za-z_][A-Za-z0-9_]*`, no space before `=`.
fn parse_definition(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('$')?;
    let eq = body.find('=')?;
    let name = &body[..eq];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name, body[eq + 1..].trim()))
}

fn parse_num(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `~SEQ(var, end)`, `~SEQ(var, start, end)`, `~SEQ(var, start, step, end)`.
fn parse_seq(args: &str, hex: bool) -> Option<Vec<Vec<(String, String)>>> {
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    let var = *parts.first()?;
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let nums: Vec<i64> = parts[1..]
        .iter()
        .map(|p| parse_num(p))
        .collect::<Option<_>>()?;
    let (start, step, end) = match nums.as_slice() {
        [end] => {
            let s = if *end >= 0 { 1 } else { -1 };
            (s, s, *end)
        }
        [start, end] => (*start, if end >= start { 1 } else { -1 }, *end),
        [start, step, end] => (*start, *step, *end),
        _ => return None,
    };
    if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
        return None;
    }
    let count = (end - start) / step + 1;
    if count > i64::try_from(MAX_GENERATED_LINES).unwrap_or(i64::MAX) {
        return None;
    }
    let mut out = Vec::new();
    let mut v = start;
    loop {
        if (step > 0 && v > end) || (step < 0 && v < end) {
            break;
        }
        let s = if hex { format!("{v:x}") } else { v.to_string() };
        out.push(vec![(var.to_owned(), s)]);
        v += step;
    }
    Some(out)
}

/// `~LST(var, v1, v2, …)` or `~LST({a,b},{1,2},{3,4})`.
fn parse_lst(args: &str) -> Option<Vec<Vec<(String, String)>>> {
    let args = args.trim();
    if args.starts_with('{') {
        let groups: Vec<Vec<String>> = args
            .split('}')
            .map(|g| g.trim().trim_start_matches(',').trim())
            .filter(|g| !g.is_empty())
            .map(|g| {
                g.trim_start_matches('{')
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect()
            })
            .collect();
        let (vars, values) = groups.split_first()?;
        let mut out = Vec::new();
        for v in values {
            if v.len() != vars.len() {
                return None;
            }
            out.push(vars.iter().cloned().zip(v.iter().cloned()).collect());
        }
        return Some(out);
    }
    let mut parts = args.split(',').map(str::trim);
    let var = parts.next()?;
    if var.is_empty() {
        return None;
    }
    Some(
        parts
            .map(|v| vec![(var.to_owned(), v.to_owned())])
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncludeKind {
    Plain,
    Readable,
    Match,
    Wildcard,
    Brace,
    All,
}

impl IncludeKind {
    /// The checks keepalived's include variants ask for.
    fn checks(self) -> u8 {
        match self {
            IncludeKind::Plain => 0,
            IncludeKind::Readable => INCLUDE_R,
            IncludeKind::Match => INCLUDE_R | INCLUDE_M,
            IncludeKind::Wildcard => INCLUDE_R | INCLUDE_M | INCLUDE_W,
            IncludeKind::Brace => INCLUDE_R | INCLUDE_B,
            IncludeKind::All => INCLUDE_R | INCLUDE_M | INCLUDE_W | INCLUDE_B,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            IncludeKind::Plain => "include",
            IncludeKind::Readable => "includer",
            IncludeKind::Match => "includem",
            IncludeKind::Wildcard => "includew",
            IncludeKind::Brace => "includeb",
            IncludeKind::All => "includea",
        }
    }
}

fn include_kind(text: &str) -> Option<IncludeKind> {
    let word = text.split([' ', '\t']).next()?;
    if word.len() == text.len() {
        return None; // the keyword must be followed by whitespace
    }
    Some(match word {
        "include" => IncludeKind::Plain,
        "includer" => IncludeKind::Readable,
        "includem" => IncludeKind::Match,
        "includew" => IncludeKind::Wildcard,
        "includeb" => IncludeKind::Brace,
        "includea" => IncludeKind::All,
        _ => return None,
    })
}

/// Shell-style brace expansion (`a{b,c}d` → `abd`, `acd`), as glob(3) with `GLOB_BRACE`.
pub fn brace_expand(s: &str) -> Vec<String> {
    let bytes: Vec<char> = s.chars().collect();
    let Some(open) = bytes.iter().position(|&c| c == '{') else {
        return vec![s.to_owned()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &c) in bytes.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![s.to_owned()];
    };
    let prefix: String = bytes[..open].iter().collect();
    let suffix: String = bytes[close + 1..].iter().collect();
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt: String = bytes[w[0] + 1..w[1]].iter().collect();
        for tail in brace_expand(&format!("{alt}{suffix}")) {
            out.push(format!("{prefix}{tail}"));
        }
        if out.len() > 10_000 {
            break;
        }
    }
    out
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The host name up to the first dot (keepalived's default config id).
pub fn default_config_id() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    h.trim().split('.').next().unwrap_or("").to_owned()
}

/// A non-zero xorshift state from a seed (splitmix64).
fn seeded(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_seed_seeds_the_random_values_after_it() {
        // The values alone (the keyword word dropped).
        let vals = |text: &str| -> Vec<String> {
            lex(text)
                .0
                .iter()
                .filter_map(|i| i.split_once('|').map(|(_, v)| v.to_owned()))
                .filter(|v| *v != "7" && *v != "8")
                .collect()
        };
        let seven = vals("random_seed 7\nx ${_RANDOM 0 1000000}\ny ${_RANDOM 0 1000000}\n");
        let again = vals("random_seed 7\nx ${_RANDOM 0 1000000}\ny ${_RANDOM 0 1000000}\n");
        let eight = vals("random_seed 8\nx ${_RANDOM 0 1000000}\ny ${_RANDOM 0 1000000}\n");
        let unseeded = vals("x ${_RANDOM 0 1000000}\ny ${_RANDOM 0 1000000}\n");
        assert_eq!(seven.len(), 2, "{seven:?}");
        assert_eq!(seven, again, "the same seed, the same values");
        assert_ne!(seven, eight, "another seed, other values");
        assert_ne!(seven, unseeded, "the seed changes the values");
        // A value before the seed is not affected by it; the one after starts the seeded run.
        let later = vals("x ${_RANDOM 0 1000000}\nrandom_seed 7\ny ${_RANDOM 0 1000000}\n");
        assert_eq!(later, [unseeded[0].clone(), seven[0].clone()]);
    }

    fn lex(text: &str) -> (Vec<String>, Diags) {
        let mut sources = SourceMap::default();
        let mut diags = Diags::default();
        let opts = LexOptions {
            config_id: Some("lb1".into()),
            ..Default::default()
        };
        let mut lx = Lexer::new(&mut sources, &mut diags, &opts);
        lx.run_text(Path::new("/nonexistent/t.conf"), text);
        let items = lx
            .items
            .iter()
            .map(|i| match i {
                Item::Open(_) => "{".to_owned(),
                Item::Close(_) => "}".to_owned(),
                Item::Words { tokens, .. } => tokens
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join("|"),
            })
            .collect();
        (items, diags)
    }

    #[test]
    fn braces_split_lines() {
        let (items, _) = lex("vrrp_instance VI_1 { state MASTER priority 100 }\n");
        assert_eq!(
            items,
            ["vrrp_instance|VI_1", "{", "state|MASTER|priority|100", "}"]
        );
    }

    #[test]
    fn comments_and_quotes() {
        let (items, _) = lex("a b # c\nx \"y # z\" ! w\np \\#q\n  ! all comment\n");
        assert_eq!(items, ["a|b", "x|y # z", "p|#q"]);
    }

    #[test]
    fn unmatched_quote_is_error() {
        let (items, d) = lex("script \"abc def\n");
        assert_eq!(items, ["script|abc def"]);
        assert!(d.list[0].is_error());
        assert_eq!(d.list[0].loc.col, 8);
    }

    #[test]
    fn conditionals() {
        let (items, _) = lex("@lb1 a 1\n@lb2 b 2\n@^lb2 c 3\n@^lb1 d 4\n@lb1\n");
        assert_eq!(items, ["a|1", "c|3"]);
    }

    #[test]
    fn definitions() {
        let (items, _) = lex("$IF=eth0\n$P=100\ninterface $IF\npriority ${P}0\nx $NOPE\n");
        assert_eq!(items, ["interface|eth0", "priority|1000", "x|$NOPE"]);
    }

    #[test]
    fn multiline_definition() {
        let (items, _) = lex("$RS= \\\nreal_server 1.1.1.1 80 { \\\n weight 2 \\\n}\n$RS\n");
        assert_eq!(items, ["real_server|1.1.1.1|80", "{", "weight|2", "}"]);
    }

    #[test]
    fn recursive_definition_is_bounded() {
        let (_, d) = lex("$A=$A x\ny $A\n");
        assert!(d
            .list
            .iter()
            .any(|d| d.message.contains("nested too deeply")));
    }

    #[test]
    fn seq_and_lst() {
        let (items, _) =
            lex("~SEQ(i, 1, 2, 5) real $i\n~LST(n, a, b) name $n\n~SEQx(h, 10, 11) x $h\n");
        assert_eq!(
            items,
            ["real|1", "real|3", "real|5", "name|a", "name|b", "x|a", "x|b"]
        );
    }

    #[test]
    fn builtins() {
        let (items, _) = lex("a ${_HASH} ${_BANG} ${_INSTANCE} ${_PWD}\n");
        assert_eq!(items, ["a|#|!|lb1|/nonexistent"]);
    }

    #[test]
    fn columns_survive_comments() {
        let mut sources = SourceMap::default();
        let mut diags = Diags::default();
        let mut lx = Lexer::new(&mut sources, &mut diags, &LexOptions::default());
        lx.run_text(Path::new("t"), "  ab  cd # x\n");
        let Item::Words { tokens, rest } = &lx.items[0] else {
            panic!()
        };
        assert_eq!((tokens[0].loc.col, tokens[1].loc.col), (3, 7));
        assert_eq!(rest, &None);
    }

    #[test]
    fn long_line_is_cut_like_fgets() {
        let long = format!("{} keep me\n", "x".repeat(1100));
        let (items, d) = lex(&long);
        assert_eq!(d.list.len(), 1);
        assert_eq!(items.len(), 1);
        assert!(items[0].ends_with("keep|me"));
    }

    #[test]
    fn brace_expansion() {
        assert_eq!(brace_expand("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(brace_expand("x{1,{2,3}}"), ["x1", "x2", "x3"]);
        assert_eq!(brace_expand("none"), ["none"]);
    }
}

//! A POSIX-shell lexer over a `shell:` template's source that classifies
//! the shell context of every `{{ … }}` placeholder, so each value can be
//! escaped for the place it lands (see [`super::escape`]).
//!
//! The lexer is pure and bounded: it reads the template text once, never
//! the values, and refuses sources past [`MAX_SOURCE`] bytes or nesting
//! past [`MAX_DEPTH`] frames. Template tags (`{% … %}`) are transparent: the
//! text of a loop body is lexed once, as written, and a placeholder inside
//! is classified by its position in that text.

use super::jinja::{Segment, segments};

mod command;

use command::{Cmd, End, is_assignment};

/// The longest `shell:` template the lexer reads.
pub const MAX_SOURCE: usize = 1 << 20;
/// The deepest nesting of quotes and substitutions the lexer follows.
pub const MAX_DEPTH: usize = 64;

/// Where a placeholder sits in the script, which decides its escaping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    /// A word or part of one, outside quotes (also an assignment's value
    /// and a redirection's target).
    Unquoted,
    /// Inside `"…"`.
    DoubleQuoted,
    /// Inside `'…'`.
    SingleQuoted,
    /// Inside `$'…'`.
    AnsiC,
    /// A heredoc body; `quoted` when its delimiter was quoted (`<<'EOF'`).
    Heredoc {
        /// Whether the body is taken literally.
        quoted: bool,
        /// The line that ends the body.
        delimiter: String,
        /// `<<-`: leading tabs are stripped before the delimiter is compared.
        strip_tabs: bool,
    },
    /// After `#`: the rest of the line is ignored, until a newline.
    Comment,
    /// The name of the command to run (or an argument of `eval`).
    CommandName,
    /// A place no escaping can make safe; says where.
    Unsupported(&'static str),
}

/// One classified placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset of `{{` in the source.
    pub start: usize,
    /// Byte offset just past `}}`.
    pub end: usize,
    /// Its shell context.
    pub context: Context,
    /// Whether the value begins an argument (nothing literal before it in
    /// its word), so a leading `-` would make it an option.
    pub word_start: bool,
    /// Whether a `--` argument precedes it in its simple command.
    pub after_dashdash: bool,
    /// Whether the argument before it looks like an option (`-n`), whose
    /// value it probably is; `validate` does not point at it, the run-time
    /// check still applies.
    pub after_option: bool,
    /// In a heredoc body, the literal text before and after it on its line,
    /// when that is all there is on the line (no other value, no tag).
    pub line_neighbours: Option<(String, String)>,
    /// How many `` `…` `` substitutions enclose it: the shell removes one
    /// level of backslashes from `\`, `` \` `` and `\$` for each.
    pub backticks: u32,
}

/// Why a template could not be lexed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// The source is longer than [`MAX_SOURCE`].
    #[error("shell template is longer than {MAX_SOURCE} bytes")]
    TooLong,
    /// Quotes and substitutions nest deeper than [`MAX_DEPTH`].
    #[error("shell template nests quotes and substitutions deeper than {MAX_DEPTH}")]
    TooDeep,
}

struct Heredoc {
    quoted: bool,
    delimiter: String,
    strip_tabs: bool,
    line: String,
    /// Slots on the current line, with the line's length when each came.
    values: Vec<(usize, usize)>,
    opaque: bool,
}

enum Frame {
    Cmd(Cmd),
    Double,
    Single,
    AnsiC,
    Param(u32),
    Comment,
    Heredoc(Heredoc),
}

struct Pending {
    quoted: bool,
    delimiter: String,
    strip_tabs: bool,
}

struct Lexer {
    frames: Vec<Frame>,
    slots: Vec<Slot>,
    pending: Vec<Pending>,
    /// A heredoc delimiter ran to the end of a text piece: a value right
    /// after it would be part of the delimiter.
    open_delimiter: bool,
}

/// Classifies every `{{ … }}` of `src`, in source order.
pub fn classify(src: &str) -> Result<Vec<Slot>, LexError> {
    if src.len() > MAX_SOURCE {
        return Err(LexError::TooLong);
    }
    let mut lx = Lexer {
        frames: vec![Frame::Cmd(Cmd::new(End::Script, 0))],
        slots: Vec::new(),
        pending: Vec::new(),
        open_delimiter: false,
    };
    for seg in segments(src) {
        match seg {
            Segment::Text(t) => lx.text(t)?,
            Segment::Value(p) => lx.value(p.start, p.end),
            Segment::Tag(_) => lx.tag(),
        }
    }
    if let Some(Frame::Heredoc(h)) = lx.frames.last_mut() {
        let h = std::mem::replace(h, empty_heredoc());
        lx.end_heredoc_line(h);
    }
    Ok(lx.slots)
}

fn empty_heredoc() -> Heredoc {
    Heredoc {
        quoted: true,
        delimiter: String::new(),
        strip_tabs: false,
        line: String::new(),
        values: Vec::new(),
        opaque: false,
    }
}

impl Lexer {
    fn push(&mut self, f: Frame) -> Result<(), LexError> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(LexError::TooDeep);
        }
        if let Some(Frame::Heredoc(h)) = self.frames.last_mut() {
            h.opaque = true;
        }
        self.frames.push(f);
        Ok(())
    }

    fn pop(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }

    /// The innermost command frame, whose word a quoted value belongs to.
    fn cmd(&mut self) -> Option<&mut Cmd> {
        self.frames.iter_mut().rev().find_map(|f| match f {
            Frame::Cmd(c) => Some(c),
            _ => None,
        })
    }

    fn mark_literal(&mut self, c: char) {
        if let Some(cmd) = self.cmd() {
            cmd.literal(c);
        }
    }

    fn tag(&mut self) {
        // A tag may drop or repeat text: a `--` before it is not certain.
        for f in &mut self.frames {
            match f {
                Frame::Cmd(c) => c.dashdash = false,
                Frame::Heredoc(h) => h.opaque = true,
                _ => {}
            }
        }
    }

    fn value(&mut self, start: usize, end: usize) {
        let index = self.slots.len();
        let mut slot = Slot {
            start,
            end,
            context: Context::Unquoted,
            word_start: false,
            after_dashdash: false,
            after_option: false,
            line_neighbours: None,
            backticks: self
                .frames
                .iter()
                .filter(|f| matches!(f, Frame::Cmd(c) if c.end == End::Backtick))
                .count() as u32,
        };
        let open_delimiter = std::mem::take(&mut self.open_delimiter);
        let top = self.frames.len() - 1;
        let quoted = match &mut self.frames[top] {
            Frame::Cmd(_) if open_delimiter => {
                slot.context = Context::Unsupported("in a heredoc delimiter");
                None
            }
            Frame::Cmd(_) => Some(Context::Unquoted),
            Frame::Double => Some(Context::DoubleQuoted),
            Frame::Single => Some(Context::SingleQuoted),
            Frame::AnsiC => Some(Context::AnsiC),
            Frame::Param(_) => {
                slot.context = Context::Unsupported("inside `${…}`");
                None
            }
            Frame::Comment => {
                slot.context = Context::Comment;
                None
            }
            Frame::Heredoc(h) => {
                slot.context = Context::Heredoc {
                    quoted: h.quoted,
                    delimiter: h.delimiter.clone(),
                    strip_tabs: h.strip_tabs,
                };
                h.values.push((index, h.line.len()));
                None
            }
        };
        if let Some(context) = quoted
            && let Some(cmd) = self.cmd()
        {
            let eval = cmd.eval;
            let echo = cmd.name.as_deref() == Some("echo");
            let w = cmd.word();
            w.values += 1;
            let assignment = is_assignment(&w.text);
            slot.context = if eval || (w.cmd_pos && !assignment) {
                Context::CommandName
            } else {
                context
            };
            slot.word_start = !w.literal && !w.redirect && !w.cmd_pos && !echo;
            slot.after_dashdash = w.after_dashdash;
            slot.after_option = w.after_option;
        }
        self.slots.push(slot);
    }

    fn text(&mut self, t: &str) -> Result<(), LexError> {
        let mut i = 0;
        while i < t.len() {
            self.open_delimiter = false;
            i += self.step(&t[i..])?;
        }
        Ok(())
    }

    /// Consumes the start of `rest` in the innermost frame; returns the
    /// bytes consumed (zero only when a frame ended without consuming).
    fn step(&mut self, rest: &str) -> Result<usize, LexError> {
        let Some(c) = rest.chars().next() else {
            return Ok(rest.len().max(1));
        };
        let len = c.len_utf8();
        let top = self.frames.len() - 1;
        match &mut self.frames[top] {
            Frame::Cmd(_) => self.cmd_step(rest, c),
            Frame::Double => Ok(match c {
                '"' => {
                    self.pop();
                    1
                }
                '\\' => {
                    let next = rest[1..].chars().next().map_or(0, char::len_utf8);
                    self.mark_literal(c);
                    1 + next
                }
                '$' | '`' => self.substitution(rest, true)?,
                _ => {
                    self.mark_literal(c);
                    len
                }
            }),
            Frame::Single => {
                if c == '\'' {
                    self.pop();
                } else {
                    self.mark_literal(c);
                }
                Ok(len)
            }
            Frame::AnsiC => Ok(match c {
                '\'' => {
                    self.pop();
                    1
                }
                '\\' => {
                    self.mark_literal(c);
                    1 + rest[1..].chars().next().map_or(0, char::len_utf8)
                }
                _ => {
                    self.mark_literal(c);
                    len
                }
            }),
            Frame::Param(depth) => {
                match c {
                    '{' => *depth += 1,
                    '}' if *depth == 0 => self.pop(),
                    '}' => *depth -= 1,
                    _ => {}
                }
                Ok(len)
            }
            Frame::Comment => {
                if c == '\n' {
                    self.pop();
                    return Ok(0);
                }
                Ok(len)
            }
            Frame::Heredoc(h) => {
                if c == '\n' {
                    let h = std::mem::replace(h, empty_heredoc());
                    self.end_heredoc_line(h);
                    return Ok(1);
                }
                if !h.quoted {
                    if c == '\\' {
                        h.line.push(c);
                        let next = rest[1..].chars().next();
                        if let Some(n) = next.filter(|n| *n != '\n') {
                            h.line.push(n);
                            return Ok(1 + n.len_utf8());
                        }
                        return Ok(1);
                    }
                    if c == '`' || rest.starts_with("$(") || rest.starts_with("${") {
                        h.line.push(c);
                        return self.substitution(rest, false);
                    }
                }
                h.line.push(c);
                Ok(len)
            }
        }
    }

    /// `$(`, `$((`, `${`, `` ` ``: opens a nested frame; `$` alone is literal.
    fn substitution(&mut self, rest: &str, in_word: bool) -> Result<usize, LexError> {
        if in_word {
            self.mark_literal('$');
        }
        if rest.starts_with('`') {
            self.push(Frame::Cmd(Cmd::new(End::Backtick, 0)))?;
            Ok(1)
        } else if rest.starts_with("$((") {
            self.push(Frame::Cmd(Cmd::new(End::Paren, 1)))?;
            Ok(3)
        } else if rest.starts_with("$(") {
            self.push(Frame::Cmd(Cmd::new(End::Paren, 0)))?;
            Ok(2)
        } else if rest.starts_with("${") {
            self.push(Frame::Param(0))?;
            Ok(2)
        } else {
            Ok(1)
        }
    }

    fn end_heredoc_line(&mut self, mut h: Heredoc) {
        let line = if h.strip_tabs {
            h.line.trim_start_matches('\t')
        } else {
            h.line.as_str()
        };
        if h.values.is_empty() && !h.opaque && line == h.delimiter {
            self.pop();
            return;
        }
        if let [(index, at)] = h.values[..]
            && !h.opaque
            && let Some(slot) = self.slots.get_mut(index)
        {
            slot.line_neighbours = Some((h.line[..at].to_string(), h.line[at..].to_string()));
        }
        h.line.clear();
        h.values.clear();
        h.opaque = false;
        if let Some(Frame::Heredoc(top)) = self.frames.last_mut() {
            *top = h;
        }
    }

    fn cmd_step(&mut self, rest: &str, c: char) -> Result<usize, LexError> {
        let top = self.frames.len() - 1;
        let Frame::Cmd(cmd) = &mut self.frames[top] else {
            return Ok(c.len_utf8());
        };
        if cmd.word.is_none() && c == '#' {
            self.push(Frame::Comment)?;
            return Ok(1);
        }
        match c {
            '\\' => match rest[1..].chars().next() {
                Some('\n') => Ok(2),
                Some(n) => {
                    cmd.literal(n);
                    Ok(1 + n.len_utf8())
                }
                None => {
                    cmd.word().literal = true;
                    Ok(1)
                }
            },
            '\'' => {
                cmd.word();
                self.push(Frame::Single)?;
                Ok(1)
            }
            '"' => {
                cmd.word();
                self.push(Frame::Double)?;
                Ok(1)
            }
            '$' if rest.starts_with("$'") => {
                cmd.word();
                self.push(Frame::AnsiC)?;
                Ok(2)
            }
            '$' if rest.starts_with("$\"") => {
                cmd.word();
                self.push(Frame::Double)?;
                Ok(2)
            }
            '$' => self.substitution(rest, true),
            '`' if cmd.end == End::Backtick => {
                cmd.end_word();
                self.pop();
                Ok(1)
            }
            '`' => self.substitution(rest, true),
            ' ' | '\t' => {
                cmd.end_word();
                Ok(1)
            }
            '\n' => {
                cmd.end_command();
                let pending = std::mem::take(&mut self.pending);
                for p in pending.into_iter().rev() {
                    self.push(Frame::Heredoc(Heredoc {
                        quoted: p.quoted,
                        delimiter: p.delimiter,
                        strip_tabs: p.strip_tabs,
                        ..empty_heredoc()
                    }))?;
                }
                Ok(1)
            }
            ';' | '&' | '|' => {
                cmd.end_command();
                Ok(1)
            }
            '(' => {
                cmd.end_word();
                if cmd.end == End::Paren {
                    cmd.depth += 1;
                }
                cmd.cmd_pos = true;
                Ok(1)
            }
            ')' => {
                cmd.end_word();
                if cmd.end == End::Paren {
                    if cmd.depth == 0 {
                        self.pop();
                        return Ok(1);
                    }
                    cmd.depth -= 1;
                }
                cmd.end_command();
                Ok(1)
            }
            '<' if rest.starts_with("<<<") => {
                cmd.end_word();
                cmd.redirect_next = true;
                Ok(3)
            }
            '<' if rest.starts_with("<<") => {
                cmd.end_word();
                let strip_tabs = rest.starts_with("<<-");
                let op = if strip_tabs { 3 } else { 2 };
                Ok(op + self.heredoc_delimiter(&rest[op..], strip_tabs))
            }
            '<' | '>' => {
                cmd.end_word();
                cmd.redirect_next = true;
                let more = rest[1..].starts_with(['>', '&', '|', '<']);
                Ok(1 + usize::from(more))
            }
            _ => {
                cmd.literal(c);
                Ok(c.len_utf8())
            }
        }
    }

    /// Reads the delimiter word after `<<`; returns the bytes it took.
    fn heredoc_delimiter(&mut self, rest: &str, strip_tabs: bool) -> usize {
        let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let mut delimiter = String::new();
        let mut quoted = false;
        let mut chars = rest[blanks..].char_indices().peekable();
        let mut used = rest.len() - blanks;
        let mut ended = false;
        while let Some((i, c)) = chars.next() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                    used = i;
                    ended = true;
                    break;
                }
                '\'' | '"' => {
                    quoted = true;
                    for (_, q) in chars.by_ref() {
                        if q == c {
                            break;
                        }
                        delimiter.push(q);
                    }
                }
                '\\' => {
                    quoted = true;
                    if let Some((_, n)) = chars.next() {
                        delimiter.push(n);
                    }
                }
                _ => delimiter.push(c),
            }
        }
        self.open_delimiter = !ended;
        self.pending.push(Pending {
            quoted,
            delimiter,
            strip_tabs,
        });
        blanks + used
    }
}

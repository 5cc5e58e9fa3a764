//! The word and simple-command state of an unquoted shell context: which
//! word is the command name, which values begin an argument, and whether a
//! `--` or an option word came before.

/// Words after which the next word is still a command name.
const COMMAND_PREFIXES: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "exec", "command",
    "builtin", "nohup", "eval",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Script,
    Paren,
    Backtick,
}

#[derive(Default)]
pub(super) struct Word {
    pub(super) cmd_pos: bool,
    pub(super) after_option: bool,
    pub(super) redirect: bool,
    pub(super) after_dashdash: bool,
    pub(super) literal: bool,
    pub(super) text: String,
    pub(super) values: usize,
}

pub(super) struct Cmd {
    pub(super) end: End,
    pub(super) depth: u32,
    pub(super) cmd_pos: bool,
    /// The last argument looked like an option (`-n`), so the next one is
    /// probably its value.
    pub(super) after_option: bool,
    /// The command's name, once known; `echo`'s arguments cannot be
    /// harmful options.
    pub(super) name: Option<String>,
    pub(super) dashdash: bool,
    pub(super) eval: bool,
    pub(super) redirect_next: bool,
    pub(super) word: Option<Word>,
}

impl Cmd {
    pub(super) fn new(end: End, depth: u32) -> Self {
        Cmd {
            end,
            depth,
            cmd_pos: true,
            after_option: false,
            name: None,
            dashdash: false,
            eval: false,
            redirect_next: false,
            word: None,
        }
    }

    pub(super) fn word(&mut self) -> &mut Word {
        let (cmd_pos, redirect, dashdash) = (self.cmd_pos, self.redirect_next, self.dashdash);
        let after_option = self.after_option;
        self.redirect_next = false;
        self.word.get_or_insert_with(|| Word {
            cmd_pos: cmd_pos && !redirect,
            after_option,
            redirect,
            after_dashdash: dashdash,
            ..Word::default()
        })
    }

    pub(super) fn literal(&mut self, c: char) {
        let w = self.word();
        w.literal = true;
        w.text.push(c);
    }

    pub(super) fn end_word(&mut self) {
        let Some(w) = self.word.take() else { return };
        if w.redirect {
            return;
        }
        self.after_option = !w.cmd_pos
            && w.values == 0
            && w.text.starts_with('-')
            && w.text != "--"
            && !w.text.contains('=');
        if w.cmd_pos {
            if is_assignment(&w.text) {
                return;
            }
            if w.values == 0 && COMMAND_PREFIXES.contains(&w.text.as_str()) {
                self.eval |= w.text == "eval";
                return;
            }
            self.cmd_pos = false;
            self.name = (w.values == 0).then_some(w.text);
        } else if w.values == 0 && w.text == "--" {
            self.dashdash = true;
        }
    }

    pub(super) fn end_command(&mut self) {
        self.end_word();
        self.cmd_pos = true;
        self.dashdash = false;
        self.after_option = false;
        self.name = None;
        self.eval = false;
        self.redirect_next = false;
    }
}

/// `NAME=…`: an assignment when written before the command name.
pub(super) fn is_assignment(text: &str) -> bool {
    match text.split_once('=') {
        Some((name, _)) => {
            let mut chars = name.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

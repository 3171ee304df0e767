//! The words for what is wrong with a reply before it may be approved: the
//! flaws the drafting check finds, where they are, and the refusal the
//! approval gate returns. Each flaw is a kind with its detail, so the desk
//! can say it in its people's language and the command line in English.

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Never sent like this.
    Error,
    /// Sent only when the engineer accepts it.
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flaw {
    EmptySubject,
    SyntaxInSubject,
    EmptyText,
    /// `{{` or `}}` left in the text.
    TemplateSyntax {
        syntax: String,
    },
    /// A fill-in such as `<KB>` its template asked the engineer to complete.
    FillIn {
        mark: String,
    },
    NoGreeting,
    /// The last lines do not name who signs.
    NoSignature {
        signer: String,
    },
}

impl Flaw {
    /// A stable name for the kind (the desk's message catalogues key on it).
    pub fn code(&self) -> &'static str {
        match self {
            Flaw::EmptySubject => "empty_subject",
            Flaw::SyntaxInSubject => "syntax_in_subject",
            Flaw::EmptyText => "empty_text",
            Flaw::TemplateSyntax { .. } => "template_syntax",
            Flaw::FillIn { .. } => "fill_in",
            Flaw::NoGreeting => "no_greeting",
            Flaw::NoSignature { .. } => "no_signature",
        }
    }

    /// The kind's detail: the syntax, the mark or the signer.
    pub fn detail(&self) -> &str {
        match self {
            Flaw::TemplateSyntax { syntax } => syntax,
            Flaw::FillIn { mark } => mark,
            Flaw::NoSignature { signer } => signer,
            _ => "",
        }
    }

    /// In English, for the command line and the logs.
    pub fn describe(&self) -> String {
        match self {
            Flaw::EmptySubject => "the subject is empty".into(),
            Flaw::SyntaxInSubject => "template syntax `{{` left in the subject".into(),
            Flaw::EmptyText => "the text is empty".into(),
            Flaw::TemplateSyntax { syntax } => {
                format!("template syntax `{syntax}` left in the text")
            }
            Flaw::FillIn { mark } => {
                format!("the fill-in {mark} is not filled in: replace it with what it asks for")
            }
            Flaw::NoGreeting => "the text does not start with a greeting".into(),
            Flaw::NoSignature { signer } => {
                format!("no signature: the last lines do not name {signer}")
            }
        }
    }
}

/// One thing wrong with a reply, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub level: Level,
    /// 0 for the subject; else the body's line.
    pub line: usize,
    pub column: usize,
    #[serde(flatten)]
    pub flaw: Flaw,
    /// The flaw in English.
    pub message: String,
}

impl Problem {
    pub fn new(level: Level, line: usize, column: usize, flaw: Flaw) -> Problem {
        let message = flaw.describe();
        Problem {
            level,
            line,
            column,
            flaw,
            message,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = self.level.as_str();
        if self.line == 0 {
            write!(f, "subject: {level}: {}", self.message)
        } else {
            write!(
                f,
                "line {}, column {}: {level}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// Why an approval was refused: the problems of the text, errors first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub draft: i64,
    pub problems: Vec<Problem>,
}

impl Refusal {
    /// Only warnings: the engineer may approve anyway.
    pub fn only_warnings(&self) -> bool {
        self.problems.iter().all(|p| p.level == Level::Warning)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "draft {} cannot be approved as it is:", self.draft)?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        if self.only_warnings() {
            write!(
                f,
                "\nonly warnings: approve anyway with --accept-warnings (on the desk: approve despite warnings)"
            )?;
        }
        Ok(())
    }
}

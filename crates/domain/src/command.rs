//! Commands written in a pull request's conversation: `/ephemera <command>`, one per comment.
//! Pure: parsing and the help text; the intake checks who wrote it and carries it out.

use chrono::Duration;

use crate::preview::is_commit_id;

/// What a comment asks of its pull request's preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Deploy the recorded commit again (a blueprint published after the push is picked up).
    Redeploy,
    /// Keep the preview at least this long from now.
    Extend(Duration),
    Preserve,
    Unpreserve,
    Destroy,
    /// Deploy a fork's head: exactly this commit.
    Approve(Option<String>),
}

/// The longest one `extend` may keep a preview for.
pub const MAX_EXTEND_DAYS: i64 = 30;

pub const PREFIX: &str = "/ephemera";

/// The reply to a command Ephemera does not know.
pub const HELP: &str = "Ephemera understands these commands, one per comment, from users with write access:\n\n\
| Command | What it does |\n|---|---|\n\
| `/ephemera redeploy` | deploys the preview's commit again |\n\
| `/ephemera extend 3d` | keeps the preview at least 3 days (or `12h`) from now, up to 30 days |\n\
| `/ephemera preserve` | keeps the preview past its expiry until `/ephemera unpreserve` |\n\
| `/ephemera unpreserve` | lets the preview expire again |\n\
| `/ephemera destroy` | deletes the preview now (the next push brings it back) |\n\
| `/ephemera approve <sha>` | deploys a fork's head, exactly that commit |\n";

/// Why a command line is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unknown(pub String);

/// The command in a comment: None when no line starts with `/ephemera`; the first such line
/// otherwise (quoted lines, `> /ephemera ...`, are someone else's words and ignored).
pub fn parse(body: &str) -> Option<Result<Command, Unknown>> {
    let line = body.lines().map(str::trim).find(|l| {
        l.strip_prefix(PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    })?;
    let words: Vec<&str> = line[PREFIX.len()..].split_whitespace().collect();
    Some(command(&words))
}

fn command(words: &[&str]) -> Result<Command, Unknown> {
    let unknown = |why: String| Err(Unknown(why));
    match words {
        [] => unknown("no command given".into()),
        [verb, rest @ ..] => match (verb.to_ascii_lowercase().as_str(), rest) {
            ("redeploy", []) => Ok(Command::Redeploy),
            ("preserve", []) => Ok(Command::Preserve),
            ("unpreserve", []) => Ok(Command::Unpreserve),
            ("destroy", []) => Ok(Command::Destroy),
            ("extend", [d]) => duration(d).map(Command::Extend).map_err(Unknown),
            ("extend", _) => unknown("`extend` takes one duration, such as `3d` or `12h`".into()),
            ("approve", []) => Ok(Command::Approve(None)),
            ("approve", [sha]) if is_commit_id(sha) => Ok(Command::Approve(Some(sha.to_ascii_lowercase()))),
            ("approve", _) => unknown("`approve` takes the commit to deploy, such as `approve 1a2b3c4`".into()),
            (v @ ("redeploy" | "preserve" | "unpreserve" | "destroy"), _) => {
                unknown(format!("`{v}` takes no arguments"))
            }
            (v, _) => unknown(format!("`{}` is not a command", v.chars().take(40).collect::<String>())),
        },
    }
}

/// `3d`, `12h`: a positive whole number of days or hours.
pub fn days_or_hours(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|n| (1..=100_000).contains(n))?;
    match unit {
        'd' | 'D' => Some(Duration::days(n)),
        'h' | 'H' => Some(Duration::hours(n)),
        _ => None,
    }
}

/// `3d`, `12h`: whole days or hours, more than zero and at most [`MAX_EXTEND_DAYS`].
pub fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration: write whole days or hours, such as `3d` or `12h`");
    let d = days_or_hours(text).ok_or_else(bad)?;
    if d > Duration::days(MAX_EXTEND_DAYS) {
        return Err(format!("{text} is longer than {MAX_EXTEND_DAYS} days, the most a preview is extended at once"));
    }
    Ok(d)
}

impl Command {
    /// How the command is written (for replies).
    pub fn text(&self) -> String {
        match self {
            Command::Redeploy => "redeploy".into(),
            Command::Extend(d) if d.num_hours() % 24 == 0 => format!("extend {}d", d.num_days()),
            Command::Extend(d) => format!("extend {}h", d.num_hours()),
            Command::Preserve => "preserve".into(),
            Command::Unpreserve => "unpreserve".into(),
            Command::Destroy => "destroy".into(),
            Command::Approve(Some(sha)) => format!("approve {sha}"),
            Command::Approve(None) => "approve".into(),
        }
    }
}

/// Who may run commands: GitHub's `admin`, `maintain` and `write` permissions.
pub fn may_command(permission: &str) -> bool {
    matches!(permission, "admin" | "maintain" | "write")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_on_their_own_line() {
        assert_eq!(parse("/ephemera redeploy"), Some(Ok(Command::Redeploy)));
        assert_eq!(parse("LGTM\n\n  /ephemera   EXTEND 3d  \nthanks"), Some(Ok(Command::Extend(Duration::days(3)))));
        assert_eq!(parse("/ephemera extend 12h"), Some(Ok(Command::Extend(Duration::hours(12)))));
        assert_eq!(parse("/ephemera preserve"), Some(Ok(Command::Preserve)));
        assert_eq!(parse("/ephemera unpreserve"), Some(Ok(Command::Unpreserve)));
        assert_eq!(parse("/ephemera destroy"), Some(Ok(Command::Destroy)));
        assert_eq!(parse("/ephemera approve"), Some(Ok(Command::Approve(None))));
        assert_eq!(parse("/ephemera approve 1A2B3C4D"), Some(Ok(Command::Approve(Some("1a2b3c4d".into())))));
    }

    #[test]
    fn other_comments_are_not_commands() {
        assert_eq!(parse("looks good"), None);
        assert_eq!(parse("try `/ephemera extend 3d`"), None);
        assert_eq!(parse("> /ephemera destroy\nno!"), None);
        assert_eq!(parse("/ephemeral redeploy"), None);
        assert_eq!(parse(HELP), None, "the help reply is not itself a command");
    }

    #[test]
    fn unknown_commands_say_why() {
        let why = |body| parse(body).unwrap().unwrap_err().0;
        assert_eq!(why("/ephemera"), "no command given");
        assert_eq!(why("/ephemera deploy"), "`deploy` is not a command");
        assert!(why("/ephemera extend").contains("one duration"));
        assert!(why("/ephemera extend 3w").contains("not a duration"));
        assert!(why("/ephemera extend 0d").contains("not a duration"));
        assert!(why("/ephemera extend 31d").contains("longer than 30 days"));
        assert!(why("/ephemera extend -1d").contains("not a duration"));
        assert!(why("/ephemera extend 3é").contains("not a duration"), "multi-byte text is no panic");
        assert!(why("/ephemera extend é").contains("not a duration"));
        assert!(why("/ephemera approve main").contains("the commit to deploy"));
        assert_eq!(why("/ephemera destroy now"), "`destroy` takes no arguments");
    }

    #[test]
    fn commands_read_back_as_written() {
        for text in ["redeploy", "extend 3d", "extend 12h", "preserve", "unpreserve", "destroy", "approve 1a2b3c4"] {
            assert_eq!(parse(&format!("/ephemera {text}")).unwrap().unwrap().text(), text);
        }
        assert!(may_command("write") && may_command("admin") && !may_command("triage") && !may_command("read"));
    }
}

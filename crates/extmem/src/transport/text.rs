//! Text a peer sent (a `Verdict`'s detail), made safe to show: control characters (terminal
//! escapes, carriage returns, bells) are escaped, so a peer cannot write to this side's
//! terminal or forge lines of its log.

/// `text` with every control character, quote and backslash escaped (`str::escape_debug`).
pub fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        let e = super::escape("\u{1b}[2J\r\nok \u{7}é");
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert_eq!(e, "\\u{1b}[2J\\r\\nok \\u{7}é");
    }
}

//! Characters a torrent's name, file paths and comment may not contain: controls, and the
//! invisible formatting characters that reorder or hide text. A right-to-left override
//! makes `a\u{202e}gpj.exe` display as "aexe.jpg", so a program would pass for a picture.
//!
//! Joiners (U+200C, U+200D) and variation selectors stay allowed: scripts such as Persian
//! and Devanagari and emoji sequences need them, and they reorder nothing.

/// Why `ch` is refused in a name or path, or `None` if it is fine.
pub(super) fn in_name(ch: char) -> Option<String> {
    if ch.is_control() {
        return Some(describe(ch, "a control character"));
    }
    misleading(ch)
}

/// Why `ch` is refused in a comment, or `None`. Line breaks and tabs are fine there.
pub(super) fn in_comment(ch: char) -> Option<String> {
    if matches!(ch, '\n' | '\r' | '\t') {
        return None;
    }
    in_name(ch)
}

/// The invisible formatting characters that reorder or hide text.
fn misleading(ch: char) -> Option<String> {
    let name = match ch {
        '\u{00AD}' => "SOFT HYPHEN",
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}'..='\u{2064}' => "an invisible mathematical operator",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{206A}'..='\u{206F}' => "a deprecated formatting character",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
        '\u{FFF9}'..='\u{FFFB}' => "an interlinear annotation character",
        '\u{1D173}'..='\u{1D17A}' => "an invisible musical formatting character",
        '\u{E0001}' => "LANGUAGE TAG",
        _ => return None,
    };
    Some(describe(
        ch,
        &format!("{name}, an invisible formatting character that can disguise text"),
    ))
}

fn describe(ch: char, what: &str) -> String {
    format!("U+{:04X} ({what})", u32::from(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_controls_are_named_and_scripts_pass() {
        assert!(
            in_name('\u{202E}')
                .unwrap()
                .contains("U+202E (RIGHT-TO-LEFT OVERRIDE")
        );
        assert!(
            in_name('\u{85}')
                .unwrap()
                .contains("U+0085 (a control character)")
        );
        assert!(in_name('\n').is_some());
        assert_eq!(in_comment('\n'), None);
        assert!(in_comment('\u{2067}').is_some());
        for fine in ['a', 'é', 'ж', 'م', '\u{200D}', '\u{200C}', '\u{FE0F}', '😀'] {
            assert_eq!(in_name(fine), None, "{fine:?}");
        }
    }
}

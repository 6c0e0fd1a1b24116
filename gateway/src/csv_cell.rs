//! CSV exports that a spreadsheet cannot turn into formulas (SPEC §8, OWASP
//! "CSV Injection"): a text cell that starts with `=`, `+`, `-`, `@`, a tab
//! or a carriage return is prefixed with `'`. Only text cells pass through
//! here (titles and the like); numeric cells are integers written as such.

use std::borrow::Cow;

/// `text`, prefixed with `'` when a spreadsheet would read it as a formula.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_prefixed_and_the_rest_kept() {
        for (cell, safe) in [
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("@HYPERLINK(\"x\")", "'@HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("Making kimchi", "Making kimchi"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralize(cell), safe);
        }
    }
}

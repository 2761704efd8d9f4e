//! What a post and a profile may say: length, lines, and what cannot be shown safely.

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// Nothing but white space.
    #[error("{what}: empty")]
    Empty {
        /// Which field.
        what: &'static str,
    },
    /// Longer than allowed.
    #[error("{what}: at most {max} characters ({given} given)")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The limit, in characters.
        max: usize,
        /// How many were given.
        given: usize,
    },
    /// Control characters (other than new lines where they are allowed) or bidirectional
    /// overrides, which can make a text read as something else.
    #[error("{what}: without control characters or bidirectional overrides")]
    Unprintable {
        /// Which field.
        what: &'static str,
    },
}

/// Whether `c` is a bidirectional override or isolate.
fn bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A post's text, trimmed: 1 to `max` characters (Unicode scalar values), new lines allowed
/// (at most two in a row are kept), no other control characters, no bidirectional overrides.
pub fn post(text: &str, max: usize) -> Result<String, TextError> {
    body("text", text, max, true, false)
}

/// A display name: up to `max` characters on one line; empty is allowed (the handle shows).
pub fn display_name(text: &str, max: usize) -> Result<String, TextError> {
    body("display_name", text, max, false, true)
}

/// A biography: up to `max` characters, new lines allowed; empty is allowed.
pub fn bio(text: &str, max: usize) -> Result<String, TextError> {
    body("bio", text, max, true, true)
}

fn body(
    what: &'static str,
    text: &str,
    max: usize,
    lines: bool,
    may_be_empty: bool,
) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() && !may_be_empty {
        return Err(TextError::Empty { what });
    }
    let given = text.chars().count();
    if given > max {
        return Err(TextError::TooLong { what, max, given });
    }
    let allowed = |c: char| lines && c == '\n';
    if text
        .chars()
        .any(|c| bidi(c) || (c.is_control() && !allowed(c) && c != '\r'))
    {
        return Err(TextError::Unprintable { what });
    }
    // New lines as `\n`, and no more than one blank line in a row.
    let mut out = String::with_capacity(text.len());
    let mut run = 0;
    for c in text.chars().filter(|c| *c != '\r') {
        if c == '\n' {
            run += 1;
            if run > 2 {
                continue;
            }
        } else {
            run = 0;
        }
        out.push(c);
    }
    Ok(out)
}

/// The Spaces a post links to (`/s/ID` paths, with or without a host in front), in order,
/// each once: the first one is shown as a card.
pub fn space_links(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("/s/") {
        let tail = &rest[at + 3..];
        let id: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        // `/s/` inside a longer path segment (say `/docs/s/x`) still counts: the app's
        // links are the only ones that end in a Space id of this alphabet.
        if !id.is_empty() && id.len() <= 64 && !found.contains(&id) {
            found.push(id.clone());
        }
        rest = &tail[id.len()..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_trimmed_and_counted_in_characters() {
        assert_eq!(post("  hello \n", 280).unwrap(), "hello");
        let long = "é".repeat(280);
        assert_eq!(post(&long, 280).unwrap(), long, "280 characters, 560 bytes");
        assert_eq!(
            post(&"a".repeat(281), 280),
            Err(TextError::TooLong {
                what: "text",
                max: 280,
                given: 281
            })
        );
        assert_eq!(post(" \n\t", 280), Err(TextError::Empty { what: "text" }));
    }

    #[test]
    fn lines_are_kept_but_not_controls_or_overrides() {
        assert_eq!(post("a\r\nb", 10).unwrap(), "a\nb");
        assert_eq!(post("a\n\n\n\n\nb", 10).unwrap(), "a\n\nb");
        assert!(matches!(
            post("a\u{7}b", 10),
            Err(TextError::Unprintable { .. })
        ));
        assert!(matches!(
            post("abc\u{202E}gpj.exe", 20),
            Err(TextError::Unprintable { .. })
        ));
        assert!(matches!(
            display_name("two\nlines", 50),
            Err(TextError::Unprintable { .. })
        ));
        assert_eq!(display_name("", 50).unwrap(), "");
        assert_eq!(
            bio("line one\nline two", 160).unwrap(),
            "line one\nline two"
        );
    }

    #[test]
    fn space_links_are_found_once_each_in_order() {
        let text = "live now https://x.example/s/abc123 and /s/zzz, again /s/abc123 /s/";
        assert_eq!(space_links(text), ["abc123", "zzz"]);
        assert!(space_links("nothing here").is_empty());
    }
}

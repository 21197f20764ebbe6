//! Shell-style name patterns for choosing trace signals: `*` matches any run of
//! characters (dots included, so `tank.*` takes `tank.level` and `tank.in.flow`), `?`
//! matches one character, everything else matches itself. Case-sensitive, like
//! variable names.

/// True when `pattern` contains a wildcard.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// True when `name` matches `pattern` as a whole.
///
/// Runs in O(len(pattern) * len(name)) at worst: on a mismatch after a `*` the match
/// resumes one character further along the name from that star, never earlier.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last star seen, and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_spans_dots_and_question_mark_takes_one_character() {
        assert!(glob_match("tank.*", "tank.level"));
        assert!(glob_match("tank.*", "tank.in.flow"));
        assert!(!glob_match("tank.*", "tanks.level"));
        assert!(glob_match("*.level", "tank.level"));
        assert!(glob_match("t?nk.*", "tank.x"));
        assert!(!glob_match("t?nk", "tnk"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("**a", "bba"));
    }

    #[test]
    fn plain_pattern_must_match_exactly() {
        assert!(glob_match("pump", "pump"));
        assert!(!glob_match("pump", "pump2"));
        assert!(!glob_match("pump2", "pump"));
        assert!(!is_glob("pump"));
        assert!(is_glob("p?mp"));
    }
}

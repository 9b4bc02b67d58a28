//! Matching a user's device or port name against what the system offers.

/// Index of the entry named `wanted`: an exact match ignoring case, or else the
/// only entry that contains it. `None` when nothing or several entries match.
pub fn pick_by_name(names: &[String], wanted: &str) -> Option<usize> {
    let wanted = wanted.to_lowercase();
    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    if let Some(i) = lower.iter().position(|n| *n == wanted) {
        return Some(i);
    }
    let mut partial = lower
        .iter()
        .enumerate()
        .filter(|(_, n)| n.contains(&wanted));
    match (partial.next(), partial.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// `"a", "b"` or `none`, for error messages that list what is available.
pub fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_partial_and_ambiguity_fails() {
        let names: Vec<String> = ["jack:input", "jack:input 2", "default"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick_by_name(&names, "JACK:INPUT"), Some(0));
        assert_eq!(pick_by_name(&names, "def"), Some(2));
        assert_eq!(pick_by_name(&names, "jack"), None);
        assert_eq!(pick_by_name(&names, "nothing"), None);
    }
}

//! Error counting for evaluation: the edit distance between a reference and a hypothesis,
//! over whitespace-separated words (word error rate) or over characters (character error rate).

/// The minimum number of substitutions, insertions and deletions that turn `h` into `r`.
fn edit_distance<T: PartialEq>(r: &[T], h: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0; h.len() + 1];
    for (i, x) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[h.len()]
}

/// Returns (word errors, reference words): the minimum number of substitutions, insertions
/// and deletions that turn `hypothesis` into `reference`, and the reference's length. The
/// word error rate of a set is the sum of the first over the sum of the second.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    (edit_distance(&r, &h), r.len())
}

/// Returns (character errors, reference characters), spaces included, with words joined by
/// single spaces (as the training code's scorer counts them).
pub fn char_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let join = |s: &str| -> Vec<char> {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect()
    };
    let (r, h) = (join(reference), join(hypothesis));
    (edit_distance(&r, &h), r.len())
}

#[cfg(test)]
mod tests {
    use super::{char_errors, word_errors};

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        assert_eq!(word_errors("a b c", "a b c"), (0, 3));
        assert_eq!(word_errors("a b c", "a x c"), (1, 3));
        assert_eq!(word_errors("a b c", "a b"), (1, 3));
        assert_eq!(word_errors("a b", "a b c d"), (2, 2));
        assert_eq!(word_errors("a  b\tc", " c b a "), (2, 3));
        assert_eq!(word_errors("", "x"), (1, 0));
        assert_eq!(word_errors("x y", ""), (2, 2));
    }

    #[test]
    fn counts_character_errors_with_spaces() {
        assert_eq!(char_errors("a cat", "a  cat"), (0, 5));
        assert_eq!(char_errors("a cat", "a bat"), (1, 5));
        assert_eq!(char_errors("a cat", "acat"), (1, 5));
        assert_eq!(char_errors("ab", ""), (2, 2));
    }
}

//! Changing the entries of a committed fuzz corpus, for property tests
//! that check that a changed entry never panics and is never accepted
//! when it should not be.

/// Applies `edits` to `items`, one after the other. Each edit is
/// `(at, item, kind)`: `at` is taken modulo the current length (0 when
/// `items` is empty); `kind` 0 replaces the element at `at` with `item`,
/// 1 removes the element at `at`, and any other kind (or 0 and 1 on an
/// empty `items`) inserts `item` at `at`.
///
/// A property test draws the edits, e.g. as
/// `vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6)`, and applies them to
/// the bytes or characters of a corpus entry.
pub fn mutate<T>(items: &mut Vec<T>, edits: impl IntoIterator<Item = (usize, T, u8)>) {
    for (at, item, kind) in edits {
        let at = if items.is_empty() {
            0
        } else {
            at % items.len()
        };
        match kind {
            0 if !items.is_empty() => items[at] = item,
            1 if !items.is_empty() => {
                items.remove(at);
            }
            _ => items.insert(at, item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mutate;

    #[test]
    fn replaces_removes_and_inserts() {
        let mut v = b"abc".to_vec();
        mutate(&mut v, [(4, b'X', 0), (0, b'_', 1), (7, b'Y', 2)]);
        // 4 % 3 = 1: "aXc"; remove at 0: "Xc"; 7 % 2 = 1: "XYc".
        assert_eq!(v, b"XYc");
        let mut empty: Vec<u8> = Vec::new();
        mutate(&mut empty, [(5, b'a', 1), (5, b'b', 0)]);
        // On an empty list every kind inserts: "a"; then 5 % 1 = 0: "b".
        assert_eq!(empty, b"b");
    }
}

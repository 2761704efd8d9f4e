//! Likes and follows written in batches: the requests of a burst wait in one bounded queue
//! and are written together, so that a post liked 5 000 times a second costs its counter one
//! update per batch, not one per like (a row updated by every like tops out near 1 000 a
//! second on PostgreSQL), and every count stays exact because it moves in the same
//! transaction as the rows it counts.

use std::collections::VecDeque;

/// Takes from the front of `queue` the longest run (at most `max`) of operations of the same
/// kind as the first: a batch holds one kind, so the operations of one account on one post
/// (like, unlike, like) keep their order across batches.
pub fn next_run<T, K: PartialEq>(
    queue: &mut VecDeque<T>,
    kind: impl Fn(&T) -> K,
    max: usize,
) -> Vec<T> {
    let Some(first) = queue.front() else {
        return Vec::new();
    };
    let k = kind(first);
    let mut run = Vec::new();
    while run.len() < max && queue.front().is_some_and(|op| kind(op) == k) {
        run.extend(queue.pop_front());
    }
    run
}

/// Counts per key of the keys in `changed` (say, the posts of the likes a batch inserted),
/// in the order each key first appears: one counter update per key per batch.
pub fn tally<K: PartialEq + Copy>(changed: impl IntoIterator<Item = K>) -> Vec<(K, i64)> {
    let mut out: Vec<(K, i64)> = Vec::new();
    for key in changed {
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => out.push((key, 1)),
        }
    }
    out
}

/// The last of each key in `items` (by `key`), in the order of their first appearance: the
/// same account liking a post twice in one batch is one like.
pub fn dedup_last<T: Clone, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        let k = key(item);
        match out.iter_mut().find(|o| key(o) == k) {
            Some(slot) => *slot = item.clone(),
            None => out.push(item.clone()),
        }
    }
    out
}

/// For each of `items` in order, whether it is in `changed` and its first appearance: a
/// request repeated within one batch changed nothing the second time.
pub fn first_changed<T: PartialEq>(items: &[T], changed: &[T]) -> Vec<bool> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| changed.contains(item) && !items[..i].contains(item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_hold_one_kind_and_keep_order() {
        let mut q: VecDeque<(char, u32)> =
            [('l', 1), ('l', 2), ('u', 1), ('l', 1), ('l', 3), ('l', 4)].into();
        assert_eq!(next_run(&mut q, |op| op.0, 10), [('l', 1), ('l', 2)]);
        assert_eq!(next_run(&mut q, |op| op.0, 10), [('u', 1)]);
        assert_eq!(next_run(&mut q, |op| op.0, 2), [('l', 1), ('l', 3)]);
        assert_eq!(next_run(&mut q, |op| op.0, 2), [('l', 4)]);
        assert!(next_run(&mut q, |op| op.0, 2).is_empty());
    }

    #[test]
    fn tallies_count_per_key() {
        assert_eq!(tally([7u64, 7, 3, 7]), [(7, 3), (3, 1)]);
        assert!(tally(std::iter::empty::<u64>()).is_empty());
        assert_eq!(
            first_changed(&[1, 2, 1, 3], &[1, 3]),
            [true, false, false, true]
        );
        assert_eq!(
            dedup_last(&[(1, 'a'), (2, 'b'), (1, 'c')], |x| x.0),
            [(1, 'c'), (2, 'b')]
        );
    }
}

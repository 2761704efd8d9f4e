//! A home timeline: posts of the accounts someone follows, newest first, from the rows fanned
//! out on write and the posts of large accounts merged at read time.
//!
//! Posts are named by ids that grow with time, so "newest first" is "largest id first" and a
//! page's cursor is the smallest id on it: the next page asks for ids below it, and posts
//! written meanwhile never shift a page or repeat one.

/// Whether a post by an account with `followers` followers is copied into each follower's
/// timeline when written (`true`), or found at read time in the author's own posts (`false`):
/// below `threshold` followers a post costs one row per follower once; at or above it, one
/// index range per reader, as a post to millions would otherwise take minutes to fan out.
pub fn fans_out(followers: u64, threshold: u64) -> bool {
    followers < threshold
}

/// Merges lists of post ids, each newest first (largest first), into one newest-first page of
/// at most `limit` ids, each once.
pub fn merge(lists: &[Vec<u64>], limit: usize) -> Vec<u64> {
    let mut heads = vec![0usize; lists.len()];
    let mut out: Vec<u64> = Vec::with_capacity(limit);
    while out.len() < limit {
        let mut best: Option<(usize, u64)> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some(&id) = list.get(heads[i])
                && best.is_none_or(|(_, b)| id > b)
            {
                best = Some((i, id));
            }
        }
        let Some((i, id)) = best else { break };
        heads[i] += 1;
        if out.last() != Some(&id) {
            out.push(id);
        }
    }
    out
}

/// The cursor of the page after one that ends with `page` (the ids shown, newest first): the
/// smallest id, when the page was full; none when it was the last.
pub fn next_cursor(page: &[u64], limit: usize) -> Option<u64> {
    if page.len() < limit {
        None
    } else {
        page.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_accounts_fan_out_and_large_ones_are_read() {
        assert!(fans_out(0, 10_000));
        assert!(fans_out(9_999, 10_000));
        assert!(!fans_out(10_000, 10_000));
        assert!(!fans_out(88_000_000, 10_000));
    }

    #[test]
    fn merging_keeps_order_and_drops_repeats() {
        let lists = vec![vec![9, 7, 3], vec![8, 7, 2], vec![], vec![10]];
        assert_eq!(merge(&lists, 10), [10, 9, 8, 7, 3, 2]);
        assert_eq!(merge(&lists, 3), [10, 9, 8]);
        assert_eq!(next_cursor(&[10, 9, 8], 3), Some(8));
        assert_eq!(next_cursor(&[3, 2], 3), None);
    }

    proptest! {
        /// Paging through with cursors shows every post once, newest first, whatever is
        /// written at the top meanwhile.
        #[test]
        fn pages_show_each_post_once(
            ids in proptest::collection::btree_set(1u64..10_000, 0..200),
            split in 1usize..4,
            limit in 1usize..20,
            late in proptest::collection::btree_set(10_000u64..20_000, 0..20),
        ) {
            let all: Vec<u64> = ids.iter().rev().copied().collect();
            let mut lists: Vec<Vec<u64>> = (0..split)
                .map(|k| all.iter().copied().filter(|id| (*id as usize) % split == k).collect())
                .collect();
            let mut seen: Vec<u64> = Vec::new();
            let mut before = u64::MAX;
            loop {
                let below: Vec<Vec<u64>> = lists
                    .iter()
                    .map(|l| l.iter().copied().filter(|id| *id < before).collect())
                    .collect();
                let page = merge(&below, limit);
                seen.extend(&page);
                match next_cursor(&page, limit) {
                    Some(c) => before = c,
                    None => break,
                }
                // Newer posts arrive between pages: they are above the cursor.
                if lists[0].first().is_none_or(|top| *top < 10_000) {
                    lists[0].splice(0..0, late.iter().rev().copied());
                }
            }
            prop_assert_eq!(seen, all);
        }
    }
}

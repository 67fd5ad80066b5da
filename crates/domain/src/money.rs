//! Spreading an integer amount over lines by weights, with optional caps.

/// Spread `x` over lines by `weights`, never giving a line more than its cap.
///
/// Each line first gets floor(x · w_i / Σw), capped at c_i; the leftover units then go one
/// each to the lines in order of largest weight (ties to the earlier line), skipping lines
/// at their cap, round and round while any remain and some line has room. If Σw = 0 every
/// line gets 0. The result never exceeds `x` in sum; it equals `x` when the caps allow.
/// Preconditions: x ≥ 0, every weight ≥ 0, every cap ≥ 0.
///
/// A line of weight 0 has no share of `x`, so it never receives leftover units either;
/// "the caps allow" therefore means Σ caps of the lines with a positive weight ≥ x.
/// Negative inputs (a broken precondition) are treated as 0 rather than panicking.
pub fn spread(x: i128, weights: &[i128], caps: Option<&[i128]>) -> Vec<i128> {
    let n = weights.len();
    debug_assert!(caps.is_none_or(|c| c.len() == n), "one cap per weight");
    let x = x.max(0);
    let weight = |i: usize| weights[i].max(0);
    let cap = |i: usize| caps.and_then(|c| c.get(i)).map(|c| (*c).max(0)).unwrap_or(i128::MAX);
    let total_weight: i128 = (0..n).map(weight).sum();
    let mut out = vec![0i128; n];
    if total_weight == 0 || x == 0 {
        return out;
    }

    for (i, slot) in out.iter_mut().enumerate() {
        *slot = (x * weight(i) / total_weight).min(cap(i));
    }
    let mut left = x - out.iter().sum::<i128>();

    // Leftover order: largest weight first, ties to the earlier line (stable sort).
    let mut order: Vec<usize> = (0..n).filter(|&i| weight(i) > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(i)));

    // Each pass finishes, fills at least one line to its cap, or leaves fewer units than
    // open lines (so the next pass finishes): the loop is bounded by 2n + 2 passes however
    // large `left` is.
    for _ in 0..2 * n + 2 {
        if left == 0 {
            break;
        }
        let open: Vec<usize> = order.iter().copied().filter(|&i| out[i] < cap(i)).collect();
        if open.is_empty() {
            break;
        }
        let m = open.len() as i128;
        let min_room = open.iter().map(|&i| cap(i) - out[i]).min().unwrap_or(0);
        // Whole rounds that every open line can still take.
        let rounds = (left / m).min(min_room);
        if rounds > 0 {
            for &i in &open {
                out[i] += rounds;
            }
            left -= rounds * m;
            continue;
        }
        // Fewer units than open lines: one each, in order, and done.
        for &i in open.iter().take(left as usize) {
            out[i] += 1;
        }
        left = 0;
    }
    debug_assert!(out.iter().sum::<i128>() <= x);
    out
}

//! Table tests for `spread` (docs/api.md, "Spread").

use kopilka_domain::money::spread;

fn check(x: i128, weights: &[i128], caps: Option<&[i128]>, expected: &[i128]) {
    assert_eq!(spread(x, weights, caps), expected, "spread({x}, {weights:?}, {caps:?})");
}

#[test]
fn proportional_with_exact_shares() {
    check(100, &[1, 1, 2], None, &[25, 25, 50]);
    check(0, &[5, 7], None, &[0, 0]);
    check(10, &[10], None, &[10]);
}

#[test]
fn leftovers_go_to_largest_weight_first() {
    // 10 over 1:2: floor gives 3 and 6, the 1 left goes to the heavier line.
    check(10, &[1, 2], None, &[3, 7]);
    // The worked example's money (docs/api.md, "Worked example: receipt R-000123"): 15000 over 30000 and 208058 → 1890 and 13109 + 1.
    check(15000, &[30000, 208058], None, &[1890, 13110]);
    // The worked example's points: 150 by 1890 and 13110 → 18 and 131 + 1.
    check(150, &[1890, 13110], None, &[18, 132]);
    // The worked example's earning: 248 by payable → 28, 194, 24 + one each to fuel and CD-1.
    check(248, &[28110, 194948, 25000], None, &[29, 195, 24]);
}

#[test]
fn ties_go_to_the_earlier_line() {
    check(1, &[1, 1, 1], None, &[1, 0, 0]);
    check(2, &[1, 1, 1], None, &[1, 1, 0]);
    check(5, &[1, 3, 3], None, &[0, 3, 2]);
    check(4, &[2, 2, 1], None, &[2, 2, 0]);
}

#[test]
fn zero_total_weight_gives_nothing() {
    check(100, &[0, 0, 0], None, &[0, 0, 0]);
    check(100, &[], None, &[]);
    check(100, &[0, 0], Some(&[50, 50]), &[0, 0]);
}

#[test]
fn zero_weight_lines_get_no_leftover() {
    check(3, &[0, 1, 1], None, &[0, 2, 1]);
    // Caps bind on the weighted lines; the weight-0 line still gets nothing.
    check(10, &[0, 1], Some(&[100, 4]), &[0, 4]);
}

#[test]
fn caps_are_never_exceeded() {
    // Caps equal to weights (the receipt's spending step): fits exactly.
    check(30, &[10, 20], Some(&[10, 20]), &[10, 20]);
    // The floor share is capped, and the excess goes round to lines with room.
    check(10, &[9, 1], Some(&[5, 10]), &[5, 5]);
    // More than the caps allow: everything is filled, the rest is not handed out.
    check(100, &[1, 1], Some(&[3, 4]), &[3, 4]);
    // A cap of 0 skips the line in every round.
    check(7, &[5, 5, 5], Some(&[0, 10, 10]), &[0, 4, 3]);
    // Round and round: many leftover units and uneven room.
    check(1000, &[1, 1, 1], Some(&[10, 400, 1000]), &[10, 400, 590]);
}

#[test]
fn large_amounts_do_not_overflow() {
    let q = 1_000_000_000_000_000i128;
    check(q, &[q, q], None, &[q / 2, q / 2]);
    check(q, &[1, q - 1], Some(&[1, q]), &[1, q - 1]);
}

//! A JSON string's content read to its closing quote: where it ends, whether it is
//! valid, and whether its escapes are *plain* (only those a control character, a
//! quote or a backslash needs: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0000` to
//! `\u001f`), so that every other character stands as itself.
//!
//! A worker's output is most of what a backend relays, and a shell's or `seq`'s
//! output has an escaped line break every few bytes: a reader that stops at every
//! escape spends its time stopping. On x86-64 this one looks at 64 bytes at a time
//! (SSE2, which every x86-64 CPU has, through `safe_arch`'s safe wrappers): a bit
//! mask each of the quotes, the backslashes and the control characters, which
//! backslashes escape the byte after them worked out for the whole block at once
//! (simdjson's carry trick), and the escaped bytes checked as a mask too; only `\u`
//! escapes are looked at one by one. Elsewhere, and as the tests' reference, it is
//! the byte-by-byte reader ([`read_scalar`]).
//!
//! Escapes are JSON's (`\u` with four hex digits, as serde_json reads them when it
//! skips a string); a raw control character is refused.

/// What reading a string's content found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StringEnd {
    /// The index after the closing quote.
    pub end: usize,
    /// Every escape in the string is plain (see the module's notes).
    pub plain: bool,
}

/// Reads the string whose opening quote is at `at - 1`; `None` if it is not valid
/// JSON string content closed by a quote.
pub(super) fn read(b: &[u8], at: usize) -> Option<StringEnd> {
    if at > b.len() {
        return None;
    }
    // Keys and short values mostly end within eight bytes and escape nothing.
    if let Some(end) = short(b, at) {
        return Some(StringEnd { end, plain: true });
    }
    read_long(b, at)
}

/// [`read`] past the first few bytes: 64 bytes at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn read_long(b: &[u8], at: usize) -> Option<StringEnd> {
    blocks::read(b, at)
}

/// [`read`] past the first few bytes: one escape at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn read_long(b: &[u8], at: usize) -> Option<StringEnd> {
    read_scalar(b, at)
}

/// The index after the closing quote if the string's first stop within eight bytes
/// of `at` is that quote.
fn short(b: &[u8], at: usize) -> Option<usize> {
    let stop = next_stop(b, at, at.saturating_add(8).min(b.len()));
    (b.get(stop) == Some(&b'"')).then_some(stop + 1)
}

/// Whether the four hex digits of a `\u` escape name a control character.
fn control_escape(hex: &[u8]) -> bool {
    matches!(hex, [b'0', b'0', b'0' | b'1', _])
}

/// Bytes that end a run of plain string content: a quote, a backslash, a control
/// character.
const STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// [`read`], one escape at a time.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
pub(super) fn read_scalar(b: &[u8], mut at: usize) -> Option<StringEnd> {
    let mut plain = true;
    loop {
        at = next_stop(b, at, b.len());
        match *b.get(at)? {
            b'"' => return Some(StringEnd { end: at + 1, plain }),
            b'\\' => match *b.get(at + 1)? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                b'/' => {
                    plain = false;
                    at += 2;
                }
                b'u' => {
                    let hex = b.get(at + 2..at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    plain &= control_escape(hex);
                    at += 6;
                }
                _ => return None,
            },
            _ => return None, // a control character
        }
    }
}

/// The first index in `at..until` holding a [`STOPS`] byte (or `until`): eight
/// bytes at a time while they last, then one at a time.
fn next_stop(b: &[u8], mut at: usize, until: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte that is zero (the lowest flagged byte is always a
    // true one: a false flag needs a borrow from a zero byte below it).
    let zero_bytes = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    while until.saturating_sub(at) >= 8 {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&b[at..at + 8]);
        let w = u64::from_le_bytes(bytes);
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let stops = control
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')));
        if stops != 0 {
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < until && !STOPS[usize::from(b[at])] {
        at += 1;
    }
    at
}

/// [`read`] 64 bytes at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod blocks {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, max_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    use super::{StringEnd, control_escape};

    /// A block's bytes as one bit each (bit `i` for byte `i`).
    type Mask = u64;

    /// Bits at even positions.
    const EVEN: Mask = 0x5555_5555_5555_5555;

    /// Filler after a string's last bytes in a block: plain, unlike what a string
    /// may be missing (its closing quote).
    const FILL: u8 = b' ';

    pub(super) fn read(b: &[u8], at: usize) -> Option<StringEnd> {
        let mut start = at;
        let mut carry = 0; // 1 when the block's first byte is escaped
        let mut plain = true;
        loop {
            let mut padded = [FILL; 64];
            let block: &[u8; 64] = match b.get(start..start + 64) {
                Some(block) => block.try_into().ok()?,
                None => {
                    let rest = b.get(start..)?;
                    padded[..rest.len()].copy_from_slice(rest);
                    &padded
                }
            };
            let quotes = mask(block, |x| eq(x, b'"'));
            let backslashes = mask(block, |x| eq(x, b'\\'));
            let controls = mask(block, |x| {
                let highest_control = set_splat_i8_m128i(0x1f);
                cmp_eq_mask_i8_m128i(max_u8_m128i(x, highest_control), highest_control)
            });
            let escaped = escaped_by(backslashes, &mut carry);
            let ends = quotes & !escaped;
            // The bits before the first closing quote (all of them if none).
            let inside = (ends & ends.wrapping_neg()).wrapping_sub(1);
            if controls & inside != 0 {
                return None;
            }
            let escaped = escaped & inside;
            if escaped != 0 {
                plain &= escapes(b, start, block, escaped)?;
            }
            if ends != 0 {
                let end = start + ends.trailing_zeros() as usize + 1;
                return Some(StringEnd { end, plain });
            }
            start += 64;
            if start >= b.len() {
                return None; // no closing quote
            }
        }
    }

    /// Checks the bytes that `escaped` marks in `block` (which starts at `start` in
    /// `b`): `Some(plain)` if each makes a valid escape, `None` if one does not.
    fn escapes(b: &[u8], start: usize, block: &[u8; 64], escaped: Mask) -> Option<bool> {
        let plain_letters = mask(block, |x| {
            let mut any = eq(x, b'"');
            for letter in *b"\\bfnrt" {
                any |= eq(x, letter);
            }
            any
        });
        let slashes = mask(block, |x| eq(x, b'/'));
        let us = mask(block, |x| eq(x, b'u'));
        if escaped & !(plain_letters | slashes | us) != 0 {
            return None;
        }
        let mut plain = escaped & slashes == 0;
        let mut us = escaped & us;
        while us != 0 {
            let at = start + us.trailing_zeros() as usize;
            let hex = b.get(at + 1..at + 5)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            plain &= control_escape(hex);
            us &= us - 1;
        }
        Some(plain)
    }

    /// The bytes a backslash escapes, given the block's backslashes; `carry` says
    /// whether its first byte is escaped and is set for the next block. A run of
    /// backslashes escapes every second byte from its start, and the byte after it if
    /// its length is odd: runs that start on an odd bit are told apart by adding
    /// their start to them (the carry ripples to the run's end), as simdjson does.
    fn escaped_by(backslashes: Mask, carry: &mut Mask) -> Mask {
        let backslashes = backslashes & !*carry;
        let follows_escape = (backslashes << 1) | *carry;
        let odd_starts = backslashes & !EVEN & !follows_escape;
        let (even_starts_flipped, overflow) = odd_starts.overflowing_add(backslashes);
        *carry = Mask::from(overflow);
        (EVEN ^ (even_starts_flipped << 1)) & follows_escape
    }

    /// The bytes equal to `byte`, as `0xff` each.
    fn eq(x: m128i, byte: u8) -> m128i {
        cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(byte as i8))
    }

    /// The bit mask of the bytes in `block` for which `test` (on 16 bytes at a time)
    /// gives `0xff`.
    #[inline(always)]
    fn mask(block: &[u8; 64], test: impl Fn(m128i) -> m128i) -> Mask {
        let mut mask = 0;
        for (i, chunk) in block.chunks_exact(16).enumerate() {
            let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
            let bits = move_mask_i8_m128i(test(load_unaligned_m128i(chunk))) as u16;
            mask |= Mask::from(bits) << (16 * i);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `read` and `read_scalar` on `content` (after an opening quote that is not
    /// passed), at every start offset in a buffer, so that blocks fall everywhere.
    fn agree(content: &[u8]) {
        for offset in [0, 1, 7, 31, 63, 64] {
            let mut b = vec![b'a'; offset];
            b.extend_from_slice(content);
            assert_eq!(
                read(&b, offset),
                read_scalar(&b, offset),
                "{:?} at {offset}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn reads_ends_escapes_and_plainness() {
        let read_str = |s: &str| read(s.as_bytes(), 0);
        let end = |end, plain| Some(StringEnd { end, plain });
        assert_eq!(read_str(r#"abc""#), end(4, true));
        assert_eq!(read_str(r#"a\n\"\\\u001f\u0000""#), end(20, true));
        assert_eq!(read_str(r#"a\/b""#), end(5, false));
        assert_eq!(read_str(r#"\u0020""#), end(7, false));
        assert_eq!(read_str(r#"\u00e9", "next""#), end(7, false));
        assert_eq!(read_str(r#"\\""#), end(3, true));
        assert_eq!(read_str(r#"\\\"""#), end(5, true));
        for far in [9, 10, 100, usize::MAX - 8, usize::MAX] {
            assert_eq!(read(b"abcdefgh\"", far), None, "from {far}");
            assert_eq!(read_scalar(b"abcdefgh\"", far), None, "from {far}");
        }
        for refused in [
            "unterminated",
            "unterminated\\",
            "a\\x\"",
            "\\u12g4\"",
            "\\u12\"",
            "a\tb\"",
            "a\u{1}b\"",
        ] {
            assert_eq!(read_str(refused), None, "{refused:?}");
            agree(refused.as_bytes());
        }
    }

    #[test]
    fn a_long_run_of_backslashes_pairs_off_across_blocks() {
        // Runs of every length up to three blocks, each at every alignment: an even
        // run leaves the quote after it closing the string, an odd one escapes it.
        for run in 0..200 {
            for lead in 0..3 {
                let content = format!("{}{}\"x\"", "a".repeat(lead), "\\".repeat(run));
                let expected = lead + run + 1 + if run % 2 == 1 { 2 } else { 0 };
                assert_eq!(
                    read(content.as_bytes(), 0).map(|s| s.end),
                    Some(expected),
                    "run {run}, lead {lead}"
                );
                agree(content.as_bytes());
            }
        }
    }

    #[test]
    fn every_stop_at_every_place_in_a_block_and_its_neighbours() {
        let stops: [&[u8]; 10] = [
            b"\"",
            b"\\n",
            b"\\/",
            b"\\u001b",
            b"\\u00e9",
            b"\\uzzzz",
            b"\\q",
            b"\x01",
            b"\x7f",
            "é".as_bytes(),
        ];
        for at in 0..140 {
            for stop in stops {
                let mut content = vec![b'x'; at];
                content.extend_from_slice(stop);
                content.extend_from_slice(b"yy\"");
                agree(&content);
                content.truncate(at + stop.len()); // and without a closing quote
                agree(&content);
            }
        }
    }

    proptest! {
        /// Strings of the bytes that matter, any length: the block reader and the
        /// byte-by-byte one agree.
        #[test]
        fn blocks_agree_with_bytes(content in proptest::collection::vec(
            proptest::sample::select(b"\"\\\\\\/ubfnrt0019aeg \x01\x1f".to_vec()), 0..300)
        ) {
            agree(&content);
        }

        /// Whatever serde writes as a string is read to its end, plain unless it
        /// escaped a `/` (it never does).
        #[test]
        fn reads_whatever_serde_writes(text in ".*", tail in "[a-z\"]{0,3}") {
            let written = serde_json::to_string(&text).unwrap();
            let b = format!("{written}{tail}");
            prop_assert_eq!(
                read(b.as_bytes(), 1),
                Some(StringEnd { end: written.len(), plain: true })
            );
            agree(&b.as_bytes()[1..]);
        }
    }
}

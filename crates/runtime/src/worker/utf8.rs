//! Incremental UTF-8 decoding of a byte stream read in arbitrary chunks.

/// Decodes a byte stream into text chunk by chunk without ever splitting a character
/// across two results.
///
/// An incomplete sequence at the end of a push (at most 3 bytes) is held back until the
/// next push; invalid bytes become U+FFFD (one per maximal invalid subpart, like
/// [`String::from_utf8_lossy`]).
#[derive(Debug, Default)]
pub(crate) struct Utf8Chunker {
    /// The start of a character whose remaining bytes have not arrived yet.
    pending: Vec<u8>,
}

impl Utf8Chunker {
    /// A decoder with nothing held back.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes` (after whatever was held back) and returns all the text that
    /// can be decoded now; may be empty.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(bytes);
            joined = buf;
            &joined
        };
        let mut out = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    // `valid` is valid UTF-8 by the definition of `valid_up_to`.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match err.error_len() {
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[len..];
                        }
                        None => {
                            // A truncated but so far valid sequence: wait for more.
                            self.pending.extend_from_slice(after);
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Flushes whatever is held back (an incomplete character becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Chunker;

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
        let mut chunker = Utf8Chunker::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            out.push(chunker.push(&bytes[start..cut]));
            start = cut;
        }
        out.push(chunker.finish());
        out
    }

    #[test]
    fn ascii_passes_through() {
        let mut c = Utf8Chunker::new();
        assert_eq!(c.push(b"hello\n"), "hello\n");
        assert_eq!(c.push(b""), "");
        assert_eq!(c.finish(), "");
    }

    #[test]
    fn multibyte_split_at_every_position_is_never_split() {
        // 1, 2, 3 and 4 byte characters.
        let text = "a\u{e9}\u{20ac}\u{1f600}z";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let pieces = decode_in_pieces(bytes, &[cut]);
            assert_eq!(pieces.concat(), text, "cut at {cut}");
            for piece in &pieces {
                assert!(!piece.contains('\u{fffd}'), "cut at {cut}: {pieces:?}");
            }
        }
        // Two cuts anywhere, including inside the same character.
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let pieces = decode_in_pieces(bytes, &[a, b]);
                assert_eq!(pieces.concat(), text, "cuts at {a}, {b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_yields_whole_characters() {
        let text = "\u{e9}\u{1f600}";
        let mut c = Utf8Chunker::new();
        let mut results = Vec::new();
        for byte in text.as_bytes() {
            let out = c.push(std::slice::from_ref(byte));
            if !out.is_empty() {
                results.push(out);
            }
        }
        assert_eq!(results, vec!["\u{e9}".to_owned(), "\u{1f600}".to_owned()]);
        assert_eq!(c.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut c = Utf8Chunker::new();
        assert_eq!(c.push(b"a\xffb"), "a\u{fffd}b");
        // A lone continuation byte.
        assert_eq!(c.push(b"\x80x"), "\u{fffd}x");
        // A start byte followed by a non-continuation byte.
        assert_eq!(c.push(b"\xc3("), "\u{fffd}(");
        // Same, but split across pushes.
        assert_eq!(c.push(b"\xe2\x82"), "");
        assert_eq!(c.push(b"Z"), "\u{fffd}Z");
        assert_eq!(c.finish(), "");
    }

    #[test]
    fn matches_lossy_decoding_of_the_whole() {
        let bytes = b"ok \xf0\x9f\x98 \xed\xa0\x80 \xc3\xa9 \xff\xfe end \xe2\x82";
        let expected = String::from_utf8_lossy(bytes).into_owned();
        for cut in 0..=bytes.len() {
            assert_eq!(
                decode_in_pieces(bytes, &[cut]).concat(),
                expected,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn truncated_character_at_eof_is_flushed_lossily() {
        let mut c = Utf8Chunker::new();
        assert_eq!(c.push(b"x\xe2\x82"), "x");
        assert_eq!(c.finish(), "\u{fffd}");
        // The decoder is empty afterwards.
        assert_eq!(c.finish(), "");
        assert_eq!(c.push(b"y"), "y");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, cut anywhere: the pieces are the lossy decoding of the whole,
        /// and at most 3 bytes are ever held back.
        #[test]
        fn any_bytes_cut_anywhere_decode_as_the_whole(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![0xc3u8, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]),
                ],
                0..64,
            ),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunker = Utf8Chunker::new();
            let mut out = String::new();
            let mut start = 0;
            for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
                out.push_str(&chunker.push(&bytes[start..cut]));
                proptest::prop_assert!(chunker.pending.len() <= 3);
                start = cut;
            }
            out.push_str(&chunker.finish());
            proptest::prop_assert_eq!(out, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

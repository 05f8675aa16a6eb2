//! Whether a plugin file is whole, or still being written.
//!
//! A wasm binary (module or component) is a header and a run of sections,
//! each announcing its size, so a file cut short almost always ends inside
//! a section. Walking the section headers costs next to nothing beside a
//! compile, and tells a copy in progress from a finished file without
//! waiting for a compile to fail.

/// `\0asm`, then the version (modules) or version and layer (components).
const HEADER: usize = 8;
const MAGIC: &[u8; 4] = b"\0asm";

/// Whether `bytes` is a wasm header followed by whole sections, the last
/// ending at the end of the file. Anything that is not wasm at all is
/// "whole" too: there is nothing to wait for, the compile will say what
/// is wrong with it. An empty file is a copy that has not written yet.
pub(super) fn is_whole(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER {
        return !MAGIC.starts_with(bytes.get(..4).unwrap_or(bytes));
    }
    if !bytes.starts_with(MAGIC) {
        return true;
    }
    let mut at = HEADER;
    while at < bytes.len() {
        // The section id, then its size.
        let Some((size, len)) = bytes.get(at + 1..).and_then(leb128_u32) else {
            return false;
        };
        match (at + 1 + len).checked_add(size as usize) {
            Some(end) if end <= bytes.len() => at = end,
            _ => return false,
        }
    }
    true
}

/// An unsigned LEB128 number of at most 32 bits at the start of `bytes`,
/// and how many bytes it took; `None` when cut short or too long.
fn leb128_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component header and two custom sections (id 0) of 3 and 200
    /// bytes (the second size takes two LEB128 bytes).
    fn component() -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        bytes.extend([0, 3, b'a', b'b', b'c']);
        bytes.extend([0, 0xc8, 0x01]);
        bytes.extend([7u8; 200]);
        bytes
    }

    #[test]
    fn a_file_cut_anywhere_inside_a_section_is_not_whole() {
        let whole = component();
        assert!(is_whole(&whole));
        for cut in 1..whole.len() {
            let expected = cut == HEADER || cut == HEADER + 5;
            assert_eq!(is_whole(&whole[..cut]), expected, "cut at {cut}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(!is_whole(&longer), "a section header without its size");
    }

    #[test]
    fn what_is_not_wasm_is_left_to_the_compiler() {
        assert!(is_whole(b"not a component at all"));
        assert!(!is_whole(b""), "an empty file: a copy that has not written yet");
        assert!(!is_whole(b"\0as"), "the start of a header");
        assert!(is_whole(b"\0ax"));
    }

    #[test]
    fn sizes_past_32_bits_or_past_the_end_are_not_whole() {
        let mut bytes = b"\0asm\x01\x00\x00\x00".to_vec();
        bytes.extend([1, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(!is_whole(&bytes));
        let mut bytes = b"\0asm\x01\x00\x00\x00".to_vec();
        bytes.extend([1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(!is_whole(&bytes), "4 GiB announced, none there");
    }
}

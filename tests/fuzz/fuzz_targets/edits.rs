//! The edit buffer a plugin hands the host from `request.apply` and
//! `response.apply`, decoded as the host does: each value sliced out of the
//! one shared buffer, each header field checked through the instance's name
//! cache. Invariants: no slice leaves the buffer; decoding stops at the
//! first malformed edit, which is where the well-formed ones end;
//! re-encoding the edits gives their bytes back; the cached check of a
//! field agrees with `http`'s own.

#![no_main]

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wasmgate::internals::NameCache;
use wasmgate_sdk::edits::{Malformed, decode, push};

fuzz_target!(|data: &[u8]| {
    let shared = Bytes::copy_from_slice(data);
    let mut names = NameCache::default();
    let mut read = 0;
    let mut malformed = false;
    for edit in decode(&shared) {
        assert!(!malformed, "an edit after a malformed one");
        let edit = match edit {
            Ok(edit) => edit,
            Err(Malformed(at)) => {
                assert_eq!(at, read, "the malformed edit starts where the last good one ended");
                malformed = true;
                continue;
            }
        };
        let end = edit.value_at.checked_add(edit.value.len()).expect("value end overflows");
        assert!(end <= shared.len(), "value {}..{end} outside a buffer of {}", edit.value_at, shared.len());
        let value = shared.slice(edit.value_at..end);
        assert_eq!(&value[..], edit.value);

        let len = 9 + edit.name.len() + edit.value.len();
        if let Ok(name) = std::str::from_utf8(edit.name) {
            let mut again = Vec::new();
            push(&mut again, edit.op, name, edit.value);
            assert_eq!(again, &data[read..read + len], "re-encoded");
        }
        read += len;

        let checked = names.field(edit.name, value).ok();
        let fresh = HeaderName::from_bytes(edit.name).ok().zip(HeaderValue::from_bytes(edit.value).ok());
        assert_eq!(checked, fresh, "the name cache and http disagree on {:?}", edit.name);
    }
    if !malformed {
        assert_eq!(read, data.len(), "well-formed edits cover the buffer");
    }
});

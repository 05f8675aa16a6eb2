//! Message bodies off the wire, chunked mostly. Invariants: the decoder
//! never yields more bytes than it read, nor more than a length allows;
//! how the bytes arrive (all at once or in small reads) changes nothing;
//! a decoded chunked body encoded again decodes to the same body.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wasmgate::internals::{Framing, decode_in_steps, encode_chunked};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, wire)) = data.split_first() else { return };
    let framing = match knob % 4 {
        0 | 1 => Framing::Chunked,
        2 => Framing::Length(u64::from(knob / 4)),
        _ => Framing::Close,
    };
    let step = usize::from(knob / 4) % 13 + 1;

    let whole = decode_in_steps(framing, wire, wire.len());
    let stepped = decode_in_steps(framing, wire, step);
    assert_eq!(whole, stepped, "{framing:?} read whole and {step} bytes at a time");
    let Ok(body) = whole else { return };
    assert!(body.used <= wire.len());
    assert!(body.data.len() <= body.used, "{} bytes of data from {} bytes read", body.data.len(), body.used);
    match framing {
        Framing::Length(n) => assert_eq!(body.data.len() as u64, n),
        Framing::Close => assert_eq!(body.data, wire),
        Framing::Chunked => {
            let trailers = body.trailers.clone().unwrap_or_default();
            let again = encode_chunked([Bytes::from(body.data.clone())], &trailers);
            let decoded = decode_in_steps(Framing::Chunked, &again, again.len()).expect("our own encoding decodes");
            assert_eq!(decoded.data, body.data);
            assert_eq!(decoded.trailers.unwrap_or_default(), trailers);
            assert_eq!(decoded.used, again.len());
        }
        Framing::Empty => {}
    }
});

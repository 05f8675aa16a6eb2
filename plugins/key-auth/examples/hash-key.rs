//! Prints what goes into key-auth's config for an API key: its SHA-256 in
//! hex, as `printf %s KEY | sha256sum` does.
//!
//! ```sh
//! printf %s "$KEY" | cargo run -q -p key-auth --example hash-key
//! cargo run -q -p key-auth --example hash-key -- --generate   # a new key and its hash
//! ```
//!
//! The key is read from standard input, not the command line, so it stays
//! out of shell history and process lists. A trailing newline is kept: it
//! would be part of the key, and `echo KEY |` is the usual mistake.

use std::io::Read;

use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("--generate") => {
            // 32 random bytes, written as 64 hex digits: a key that needs no
            // escaping in a header or a query.
            let mut random = [0u8; 32];
            std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
            let key = hex(&random);
            println!("key:  {key}");
            println!("hash: {}", hex(&Sha256::digest(key.as_bytes())));
        }
        Some(other) => {
            eprintln!("unknown argument {other:?}: pipe the key in, or pass --generate");
            std::process::exit(2);
        }
        None => {
            let mut key = Vec::new();
            std::io::stdin().read_to_end(&mut key)?;
            if key.ends_with(b"\n") {
                eprintln!("warning: the key ends with a newline, which is hashed too; use `printf %s`, not `echo`");
            }
            println!("{}", hex(&Sha256::digest(&key)));
        }
    }
    Ok(())
}

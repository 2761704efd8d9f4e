//! The door's reading of a fresh connection's first request head: any bytes are a media
//! request, an anonymous ticket request, "the HTTP server's", or "not whole yet", and what it
//! reports of the head lies within the bytes read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stentor_server::join::door::{Sniffed, classify};

fuzz_target!(|data: &[u8]| {
    match classify(data) {
        Some(Sniffed::OggLive { head, .. })
        | Some(Sniffed::WebSocket { head, .. })
        | Some(Sniffed::Ticket { head, .. }) => assert!(head <= data.len()),
        Some(Sniffed::Http) | None => {}
    }
});

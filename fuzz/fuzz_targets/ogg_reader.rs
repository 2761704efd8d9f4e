//! The Ogg reader of the source (`PUT …/source`) fed any bytes in any pieces: it returns
//! packets or an error, never panics, and holds at most a page and a packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stentor_media::ogg::{OggReader, parse_opus_head};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how the stream is cut into pieces, as a network would.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut).max(1);
    let mut reader = OggReader::new();
    'feed: for chunk in stream.chunks(piece) {
        reader.feed(chunk);
        loop {
            match reader.next_packet() {
                Ok(Some(packet)) => {
                    let _ = parse_opus_head(&packet.data);
                    let _ = stentor_media::opus::validate_packet(&packet.data);
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
});

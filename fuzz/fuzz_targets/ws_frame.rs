//! The WebSocket frame parser of the fan-out (listeners' frames are parsed without a
//! protocol object): any bytes give frames, "more needed" or an error with a close code, and
//! a frame never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stentor_hub::wsframe::{MAX_WS_MESSAGE, parse_client};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match parse_client(rest, MAX_WS_MESSAGE) {
            Ok(Some((_frame, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(e) => {
                let code = e.close_code();
                assert!((1000..5000).contains(&code), "{code}");
                break;
            }
        }
    }
});

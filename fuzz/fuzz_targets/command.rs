//! The JSON command decoder shared by listeners and the stage: any text is a command or a
//! close with 1007, and a command read back from its own JSON is the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stentor_space::Command;

fuzz_target!(|data: &[u8]| {
    match stentor_server::commands::parse(data) {
        Ok(command) => {
            let json = serde_json::to_vec(&command).expect("a command serializes");
            let again: Command = serde_json::from_slice(&json).expect("and reads back");
            assert_eq!(again, command);
        }
        Err((code, _)) => assert_eq!(code, 1007),
    }
});

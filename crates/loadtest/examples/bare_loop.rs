//! The reference for fan-out cost: the barest server that streams Ogg to many sockets. One
//! thread accepts and answers the request; one thread makes a 32 kbit/s stream of 20 ms
//! pages and, every cadence, writes everything gathered since the last time to every socket
//! with one `write` each. No HTTP stack, no async runtime, no per-listener state but the
//! socket; a socket that is full just misses that write (nothing is buffered).
//!
//! `cargo run --release -p stentor-loadtest --example bare_loop -- 127.0.0.1:9000 140`
//! then `stentor loadtest --url http://127.0.0.1:9000/live.opus --transport ogg ...`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stentor_media::ogg::{self, PageWriter};

/// Bytes of one 20 ms packet at 32 kbit/s.
const PACKET: usize = 80;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9000".into());
    let cadence_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let frames_per_write = (cadence_ms / 20).max(1);
    rlimit::increase_nofile_limit(u64::MAX)?;
    let listener = TcpListener::bind(&addr)?;
    eprintln!("bare loop on {addr}: one write per socket every {frames_per_write} frames");
    let mut writer = PageWriter::new(1);
    let headers: Vec<u8> = ogg::opus_header_pages(&mut writer, "bare")
        .iter()
        .flat_map(|p| p.to_vec())
        .collect();
    let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let accepted = sockets.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Ok(stream) = answer(stream, &headers) {
                accepted.lock().expect("not poisoned").push(stream);
            }
        }
    });
    let packet = [0u8; PACKET];
    let mut batch = Vec::new();
    let start = Instant::now();
    let (mut writes, mut missed, mut partial) = (0u64, 0u64, 0u64);
    for seq in 0u64.. {
        let due = start + Duration::from_millis(20 * seq);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let granule = u64::from(ogg::PRE_SKIP) + (seq + 1) * 960;
        batch.extend_from_slice(&writer.page(&[&packet], granule, 0));
        if (seq + 1) % frames_per_write != 0 {
            continue;
        }
        let mut all = sockets.lock().expect("not poisoned");
        all.retain_mut(|s| match s.write(&batch) {
            Ok(n) => {
                writes += 1;
                partial += u64::from(n < batch.len());
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                missed += 1;
                true
            }
            Err(_) => false,
        });
        let listeners = all.len();
        drop(all);
        batch.clear();
        if seq % 500 == 0 {
            eprintln!("{listeners} listeners, {writes} writes, {missed} missed, {partial} partial");
        }
    }
    Ok(())
}

/// Reads a request head (any) and answers with the stream's head and header pages.
fn answer(mut stream: TcpStream, headers: &[u8]) -> std::io::Result<TcpStream> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_nodelay(true)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() > 16 * 1024 {
            return Err(ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    stream.write_all(b"HTTP/1.0 200 OK\r\ncontent-type: audio/ogg\r\n\r\n")?;
    stream.write_all(headers)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

//! The jitter buffer: ordering, waiting, concealment, restarts and adaptive delay.

use stentor_media::jitter::{JitterBuffer, JitterConfig, Playout, Pushed};

/// A buffer that starts two frames deep, so that waiting and reordering show.
fn buffer() -> JitterBuffer<u32> {
    JitterBuffer::new(JitterConfig {
        target_frames: 2,
        ..JitterConfig::default()
    })
}

#[test]
fn by_default_a_packet_plays_at_the_next_tick() {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    jb.push(7, 7);
    assert_eq!(jb.pop(), Playout::Packet(7));
}

#[test]
fn playout_waits_for_the_target_depth_then_plays_in_order() {
    let mut jb = buffer();
    jb.push(10, 10);
    assert_eq!(jb.pop(), Playout::Silent);
    jb.push(12, 12);
    jb.push(11, 11);
    assert_eq!(jb.pop(), Playout::Packet(10));
    assert_eq!(jb.pop(), Playout::Packet(11));
    assert_eq!(jb.pop(), Playout::Packet(12));
}

#[test]
fn a_lone_packet_plays_after_the_target_delay() {
    let mut jb = buffer();
    jb.push(1, 1);
    assert_eq!(jb.pop(), Playout::Silent);
    assert_eq!(jb.pop(), Playout::Packet(1));
}

#[test]
fn a_packet_that_is_just_late_is_waited_for_not_dropped() {
    let mut jb = buffer();
    jb.push(0, 0);
    jb.push(1, 1);
    assert_eq!(jb.pop(), Playout::Packet(0));
    assert_eq!(jb.pop(), Playout::Packet(1));
    assert_eq!(jb.pop(), Playout::Conceal);
    jb.push(2, 2);
    jb.push(3, 3);
    assert_eq!(jb.pop(), Playout::Packet(2));
    assert_eq!(jb.pop(), Playout::Packet(3));
    assert_eq!(jb.stats().late, 0);
}

#[test]
fn late_packets_raise_the_delay_and_quiet_lowers_it() {
    let mut jb = buffer();
    assert_eq!(jb.target(), 2);
    for seq in [0, 1, 3, 4] {
        jb.push(seq, seq);
    }
    for _ in 0..3 {
        jb.pop();
    }
    assert_eq!(jb.push(2, 2), Pushed::Late);
    assert_eq!(jb.target(), 3);
    // A steady stream one frame deeper than needed: after the quiet spell the target
    // falls back and the extra frame is dropped.
    for seq in 5..5 + 2 * 500 {
        jb.push(seq, seq);
        jb.pop();
    }
    assert_eq!(jb.target(), 1);
    assert!(jb.depth() <= 2, "depth {}", jb.depth());
}

#[test]
fn a_missing_packet_is_concealed_and_a_late_one_dropped() {
    let mut jb = buffer();
    for seq in [1, 2, 4, 5] {
        jb.push(seq, seq);
    }
    assert_eq!(jb.pop(), Playout::Packet(1));
    assert_eq!(jb.pop(), Playout::Packet(2));
    assert_eq!(jb.pop(), Playout::Conceal);
    assert_eq!(jb.push(3, 3), Pushed::Late);
    assert_eq!(jb.pop(), Playout::Packet(4));
    assert_eq!(jb.stats().late, 1);
    assert_eq!(jb.stats().concealed, 1);
}

#[test]
fn a_sender_that_restarts_its_numbering_is_heard_at_once() {
    let mut jb = buffer();
    for seq in 1000..1003 {
        jb.push(seq, seq);
    }
    for _ in 0..3 {
        jb.pop();
    }
    assert_eq!(jb.push(0, 0), Pushed::Stored);
    jb.push(1, 1);
    assert_eq!(jb.pop(), Playout::Packet(0));
    assert_eq!(jb.pop(), Playout::Packet(1));
}

#[test]
fn sequence_numbers_wrap() {
    let mut jb = buffer();
    for seq in [u32::MAX - 1, u32::MAX, 0, 1] {
        jb.push(seq, seq);
    }
    let played: Vec<_> = (0..4).map(|_| jb.pop()).collect();
    assert_eq!(
        played,
        [u32::MAX - 1, u32::MAX, 0, 1].map(Playout::Packet).to_vec()
    );
}

#[test]
fn a_speaker_who_stops_goes_silent_after_a_short_concealment() {
    let mut jb = buffer();
    for seq in 0..3 {
        jb.push(seq, seq);
    }
    for _ in 0..3 {
        assert!(matches!(jb.pop(), Playout::Packet(_)));
    }
    for _ in 0..10 {
        assert_eq!(jb.pop(), Playout::Conceal);
    }
    assert_eq!(jb.pop(), Playout::Silent);
    assert!(!jb.is_playing());
}

#[test]
fn a_burst_never_holds_more_than_max_frames() {
    let mut jb = buffer();
    for seq in 0..1000 {
        jb.push(seq, seq);
    }
    assert_eq!(jb.depth(), 25);
    assert_eq!(jb.pop(), Playout::Packet(975));
}

proptest::proptest! {
    #[test]
    fn every_packet_plays_at_most_once_and_in_order(
        // Reordered by up to 20 frames, duplicated and lost, but never restarted.
        jitter in proptest::collection::vec(0u32..20, 0..400),
        pops in proptest::collection::vec(proptest::bool::ANY, 0..400),
    ) {
        let mut jb = buffer();
        let mut played = Vec::new();
        let seqs: Vec<u32> = jitter.iter().enumerate().map(|(i, j)| i as u32 / 2 + j).collect();
        for (i, seq) in seqs.iter().enumerate() {
            jb.push(*seq, *seq);
            if pops.get(i).copied().unwrap_or(false)
                && let Playout::Packet(p) = jb.pop()
            {
                played.push(p);
            }
            proptest::prop_assert!(jb.depth() <= 25);
        }
        for _ in 0..300 {
            if let Playout::Packet(p) = jb.pop() { played.push(p); }
        }
        let mut sorted = played.clone();
        sorted.sort();
        sorted.dedup();
        proptest::prop_assert_eq!(sorted, played);
    }
}

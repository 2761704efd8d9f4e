//! Opus in fragmented MP4 (CMAF): the init segment and the fragments of LL-HLS.
//!
//! The boxes are `mp4-atom`'s; this module only says which ones an Opus stream of 20 ms
//! frames needs: `ftyp` + `moov` (one audio track, sample entry `Opus` with its `dOps`) once,
//! then a `moof` + `mdat` per fragment, each frame a sample of 960 ticks at 48 kHz.

use crate::{FRAME_SAMPLES, SAMPLE_RATE, ogg::PRE_SKIP};
use bytes::Bytes;
use mp4_atom::{
    Audio, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Mdat, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mvex,
    Mvhd, Opus, Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url,
};

/// The one track's id.
const TRACK: u32 = 1;
/// Sample flags of every Opus frame: a sync sample that depends on no other.
const SYNC: u32 = 0x0200_0000;

/// The init segment (`ftyp` + `moov`) of a mono Opus stream at 48 kHz.
pub fn init_segment() -> Bytes {
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let opus = Opus {
        audio: Audio {
            data_reference_index: 1,
            channel_count: 1,
            sample_size: 16,
            sample_rate: (SAMPLE_RATE as u16).into(),
        },
        dops: Dops {
            output_channel_count: 1,
            pre_skip: PRE_SKIP,
            input_sample_rate: SAMPLE_RATE,
            output_gain: 0,
            channel_mapping: None,
        },
        btrt: None,
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: SAMPLE_RATE,
            next_track_id: TRACK + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: TRACK,
                default_sample_description_index: 1,
                default_sample_duration: FRAME_SAMPLES as u32,
                default_sample_size: 0,
                default_sample_flags: SYNC,
            }],
        }),
        trak: vec![Trak {
            tkhd: Tkhd {
                track_id: TRACK,
                enabled: true,
                in_movie: true,
                volume: 1.into(),
                ..Default::default()
            },
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: SAMPLE_RATE,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: b"soun".into(),
                    name: "stentor mix".into(),
                },
                minf: Minf {
                    smhd: Some(Smhd::default()),
                    dinf: Dinf {
                        dref: Dref {
                            entries: vec![
                                Url {
                                    location: String::new(),
                                }
                                .into(),
                            ],
                        },
                    },
                    stbl: Stbl {
                        stsd: Stsd {
                            codecs: vec![opus.into()],
                        },
                        stco: Some(Stco::default()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(640);
    ftyp.encode(&mut out).expect("an ftyp box encodes");
    moov.encode(&mut out).expect("a moov box encodes");
    Bytes::from(out)
}

/// One fragment (`moof` + `mdat`): `packets`, one 20 ms frame each, the first of which starts
/// at frame `first_frame` of the stream; `sequence` is the fragment's number (from 1).
pub fn fragment(sequence: u32, first_frame: u64, packets: &[Bytes]) -> Bytes {
    let samples = packets
        .iter()
        .map(|p| TrunEntry {
            size: Some(p.len() as u32),
            ..Default::default()
        })
        .collect();
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK,
                default_sample_duration: Some(FRAME_SAMPLES as u32),
                default_sample_flags: Some(SYNC),
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: first_frame * FRAME_SAMPLES as u64,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(samples),
            }],
            ..Default::default()
        }],
    };
    let payload: usize = packets.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(256 + payload);
    moof.encode(&mut out).expect("a moof box encodes");
    // The samples start right after the moof and the mdat's 8-byte header.
    moof.traf[0].trun[0].data_offset = Some(out.len() as i32 + 8);
    out.clear();
    moof.encode(&mut out).expect("a moof box encodes");
    let mut data = Vec::with_capacity(payload);
    for p in packets {
        data.extend_from_slice(p);
    }
    Mdat { data }.encode(&mut out).expect("an mdat box encodes");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, Decode};
    use std::io::Cursor;

    #[test]
    fn the_init_segment_declares_mono_opus_at_48_khz() {
        let init = init_segment();
        let mut buf = Cursor::new(init.as_ref());
        assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
            panic!("no moov")
        };
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 48_000);
        let mp4_atom::Codec::Opus(opus) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not opus")
        };
        assert_eq!(opus.dops.output_channel_count, 1);
        assert_eq!(opus.dops.pre_skip, PRE_SKIP);
        assert_eq!(moov.mvex.unwrap().trex[0].default_sample_duration, 960);
        assert_eq!(buf.position() as usize, init.len());
    }

    #[test]
    fn a_fragment_points_at_its_samples_in_order() {
        let packets: Vec<Bytes> = (0..10u8)
            .map(|i| Bytes::from(vec![i; 20 + i as usize]))
            .collect();
        let frag = fragment(7, 250, &packets);
        let mut buf = Cursor::new(frag.as_ref());
        let Any::Moof(moof) = Any::decode(&mut buf).unwrap() else {
            panic!("no moof")
        };
        let moof_len = buf.position() as usize;
        let Any::Mdat(mdat) = Any::decode(&mut buf).unwrap() else {
            panic!("no mdat")
        };
        assert_eq!(moof.mfhd.sequence_number, 7);
        let traf = &moof.traf[0];
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            250 * 960
        );
        let trun = &traf.trun[0];
        assert_eq!(trun.data_offset, Some(moof_len as i32 + 8));
        assert_eq!(trun.samples.len(), 10);
        let mut at = trun.data_offset.unwrap() as usize;
        for (i, p) in packets.iter().enumerate() {
            let size = trun.samples.get(i).unwrap().size.unwrap() as usize;
            assert_eq!(&frag[at..at + size], p.as_ref());
            at += size;
        }
        assert_eq!(at, frag.len());
        assert_eq!(
            mdat.data.len(),
            packets.iter().map(Bytes::len).sum::<usize>()
        );
    }
}

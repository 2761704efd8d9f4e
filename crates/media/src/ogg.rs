//! Ogg pages (RFC 3533) and the Ogg/Opus headers (RFC 7845): a writer for the live stream
//! and an incremental reader for Ogg/Opus sources.

use bytes::{BufMut, Bytes, BytesMut};

/// Page flag: this page continues a packet from the previous page.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Page flag: first page of a logical stream.
pub const FLAG_BOS: u8 = 0x02;
/// Page flag: last page of a logical stream.
pub const FLAG_EOS: u8 = 0x04;

/// Samples the decoder drops at the start (the encoder's lookahead at 48 kHz).
pub const PRE_SKIP: u16 = 312;

const HEADER_LEN: usize = 27;
const MAX_PAGE_LEN: usize = HEADER_LEN + 255 + 255 * 255;
/// Largest packet the reader assembles; Opus packets are far smaller.
pub const MAX_PACKET_LEN: usize = 64 * 1024;

/// An error reading an Ogg stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OggError {
    /// No page capture pattern where one must be.
    #[error("not an Ogg stream (no OggS capture pattern)")]
    NoCapture,
    /// The page checksum does not match its bytes.
    #[error("Ogg page checksum mismatch")]
    BadChecksum,
    /// The page header is malformed (version, lengths).
    #[error("malformed Ogg page header")]
    BadHeader,
    /// A packet grew beyond [`MAX_PACKET_LEN`].
    #[error("Ogg packet larger than {MAX_PACKET_LEN} bytes")]
    PacketTooLarge,
    /// The stream does not start with a valid OpusHead.
    #[error("not an Ogg/Opus stream: {0}")]
    NotOpus(&'static str),
}

/// The CRC-32 of Ogg (polynomial 0x04c11db7, no reflection, initial value 0).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut j = 0;
            while j < 8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
                j += 1;
            }
            table[i] = r;
            i += 1;
        }
        table
    };
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// Writes the pages of one logical Ogg stream.
#[derive(Debug, Clone)]
pub struct PageWriter {
    serial: u32,
    sequence: u32,
}

impl PageWriter {
    /// A writer for the stream with this serial number.
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            sequence: 0,
        }
    }

    /// Writes one page holding whole `packets`; `granule` is the position after its last
    /// sample. Each packet must be shorter than 255 × 255 bytes in all (Opus packets are).
    pub fn page(&mut self, packets: &[&[u8]], granule: u64, flags: u8) -> Bytes {
        let mut lacing = Vec::with_capacity(packets.len() * 2);
        for p in packets {
            lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
            lacing.push((p.len() % 255) as u8);
        }
        assert!(lacing.len() <= 255, "too many packets for one Ogg page");
        let body: usize = packets.iter().map(|p| p.len()).sum();
        let mut page = BytesMut::with_capacity(HEADER_LEN + lacing.len() + body);
        page.put_slice(b"OggS");
        page.put_u8(0);
        page.put_u8(flags);
        page.put_u64_le(granule);
        page.put_u32_le(self.serial);
        page.put_u32_le(self.sequence);
        page.put_u32_le(0);
        page.put_u8(lacing.len() as u8);
        page.put_slice(&lacing);
        for p in packets {
            page.put_slice(p);
        }
        let crc = crc32(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.sequence = self.sequence.wrapping_add(1);
        page.freeze()
    }

    /// Sets the sequence number of the next page.
    pub fn set_sequence(&mut self, sequence: u32) {
        self.sequence = sequence;
    }
}

/// The OpusHead packet for a mono 48 kHz stream.
pub fn opus_head() -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(1); // channels
    h.extend_from_slice(&PRE_SKIP.to_le_bytes());
    h.extend_from_slice(&crate::SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family
    h
}

/// The OpusTags packet with a vendor string and `key=value` comments.
pub fn opus_tags(vendor: &str, comments: &[String]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// The two header pages (OpusHead, OpusTags) that start every Ogg/Opus stream.
pub fn opus_header_pages(writer: &mut PageWriter, title: &str) -> [Bytes; 2] {
    let head = writer.page(&[&opus_head()], 0, FLAG_BOS);
    let tags = opus_tags("stentor", &[format!("TITLE={title}")]);
    let tags = writer.page(&[&tags], 0, 0);
    [head, tags]
}

/// One page read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Header flags (`FLAG_*`).
    pub flags: u8,
    /// Granule position.
    pub granule: u64,
    /// Stream serial number.
    pub serial: u32,
    /// Page sequence number.
    pub sequence: u32,
    /// Segment table.
    pub lacing: Vec<u8>,
    /// Page body.
    pub body: Bytes,
}

/// One packet read from a stream, with the granule of the page it ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet bytes.
    pub data: Bytes,
    /// Granule position of the page where the packet ended.
    pub granule: u64,
    /// Sequence number of that page.
    pub page_sequence: u32,
}

/// Reads pages and packets from an Ogg byte stream fed in arbitrary pieces.
///
/// Driving contract: call [`OggReader::feed`] with bytes as they arrive, then
/// [`OggReader::next_packet`] until it returns `Ok(None)`. Memory stays bounded by one page
/// plus one packet; anything malformed is an error and the reader should be dropped.
#[derive(Debug, Default)]
pub struct OggReader {
    buf: BytesMut,
    partial: BytesMut,
    pending: std::collections::VecDeque<Packet>,
}

impl OggReader {
    /// A reader with nothing fed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete page, if one has arrived.
    pub fn next_page(&mut self) -> Result<Option<Page>, OggError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        if &self.buf[..4] != b"OggS" {
            return Err(OggError::NoCapture);
        }
        if self.buf[4] != 0 {
            return Err(OggError::BadHeader);
        }
        let segments = self.buf[26] as usize;
        if self.buf.len() < HEADER_LEN + segments {
            return Ok(None);
        }
        let lacing = self.buf[HEADER_LEN..HEADER_LEN + segments].to_vec();
        let body_len: usize = lacing.iter().map(|&l| l as usize).sum();
        let total = HEADER_LEN + segments + body_len;
        debug_assert!(total <= MAX_PAGE_LEN);
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut page = self.buf.split_to(total);
        let stored = u32::from_le_bytes(page[22..26].try_into().expect("4 bytes"));
        page[22..26].fill(0);
        if crc32(&page) != stored {
            return Err(OggError::BadChecksum);
        }
        let u32_at = |i: usize| u32::from_le_bytes(page[i..i + 4].try_into().expect("4 bytes"));
        let granule = u64::from_le_bytes(page[6..14].try_into().expect("8 bytes"));
        let (flags, serial, sequence) = (page[5], u32_at(14), u32_at(18));
        let body = page.split_off(HEADER_LEN + segments).freeze();
        Ok(Some(Page {
            flags,
            granule,
            serial,
            sequence,
            lacing,
            body,
        }))
    }

    /// Takes the next complete packet, if one has arrived.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, OggError> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(Some(p));
            }
            let Some(page) = self.next_page()? else {
                return Ok(None);
            };
            if page.flags & FLAG_CONTINUED == 0 {
                self.partial.clear();
            }
            let mut offset = 0;
            for &len in &page.lacing {
                let len = len as usize;
                self.partial
                    .extend_from_slice(&page.body[offset..offset + len]);
                offset += len;
                if self.partial.len() > MAX_PACKET_LEN {
                    return Err(OggError::PacketTooLarge);
                }
                if len < 255 {
                    self.pending.push_back(Packet {
                        data: self.partial.split().freeze(),
                        granule: page.granule,
                        page_sequence: page.sequence,
                    });
                }
            }
        }
    }
}

/// What [`peek_page`] tells about a page without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Bytes of the whole page (header, segment table and body).
    pub len: usize,
    /// Granule position.
    pub granule: u64,
    /// Packets that end on this page.
    pub packets_completed: usize,
}

/// Looks at the page at the start of `buf` without copying or checking its CRC: `Ok(None)`
/// if the page is not complete yet. For readers that only count (load generators), where
/// [`OggReader`] would allocate per page.
pub fn peek_page(buf: &[u8]) -> Result<Option<PageInfo>, OggError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if &buf[..4] != b"OggS" {
        return Err(OggError::NoCapture);
    }
    let segments = buf[26] as usize;
    let Some(lacing) = buf.get(HEADER_LEN..HEADER_LEN + segments) else {
        return Ok(None);
    };
    let len = HEADER_LEN + segments + lacing.iter().map(|&l| l as usize).sum::<usize>();
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(PageInfo {
        len,
        granule: u64::from_le_bytes(buf[6..14].try_into().expect("8 bytes")),
        packets_completed: lacing.iter().filter(|&&l| l < 255).count(),
    }))
}

/// Checks that `packet` is an OpusHead and returns its channel count and pre-skip.
pub fn parse_opus_head(packet: &[u8]) -> Result<(u8, u16), OggError> {
    if packet.len() < 19 || &packet[..8] != b"OpusHead" {
        return Err(OggError::NotOpus("first packet is not OpusHead"));
    }
    if packet[8] >> 4 != 0 {
        return Err(OggError::NotOpus("unsupported OpusHead version"));
    }
    let channels = packet[9];
    if channels == 0 || channels > 2 {
        return Err(OggError::NotOpus("only mono or stereo Opus is accepted"));
    }
    Ok((channels, u16::from_le_bytes([packet[10], packet[11]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // The CRC of "OggS" alone under Ogg's parameters.
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn written_pages_read_back_as_the_same_packets() {
        let mut w = PageWriter::new(42);
        let [head, tags] = opus_header_pages(&mut w, "t");
        let big = vec![7u8; 600];
        let body = w.page(&[b"abc", &big, &[]], 960, 0);
        let mut stream = Vec::new();
        for p in [&head, &tags, &body] {
            stream.extend_from_slice(p);
        }
        let mut r = OggReader::new();
        // Feed byte by byte to prove the reader copes with any split.
        let mut packets = Vec::new();
        for b in &stream {
            r.feed(std::slice::from_ref(b));
            while let Some(p) = r.next_packet().unwrap() {
                packets.push(p);
            }
        }
        assert_eq!(packets.len(), 5);
        assert_eq!(parse_opus_head(&packets[0].data).unwrap(), (1, PRE_SKIP));
        assert!(packets[1].data.starts_with(b"OpusTags"));
        assert_eq!(&packets[2].data[..], b"abc");
        assert_eq!(packets[3].data.len(), 600);
        assert!(packets[4].data.is_empty());
        assert_eq!(packets[4].granule, 960);
        assert_eq!(packets[4].page_sequence, 2);
    }

    #[test]
    fn peeking_sees_length_granule_and_packets_without_copying() {
        let mut w = PageWriter::new(3);
        let page = w.page(&[b"ab", &[9u8; 300]], 4242, 0);
        assert_eq!(peek_page(&page[..10]), Ok(None));
        assert_eq!(peek_page(&page[..page.len() - 1]), Ok(None));
        let info = peek_page(&page).unwrap().unwrap();
        assert_eq!(
            info,
            PageInfo {
                len: page.len(),
                granule: 4242,
                packets_completed: 2
            }
        );
        assert_eq!(
            peek_page(b"NotOgg at all, no capture here"),
            Err(OggError::NoCapture)
        );
    }

    #[test]
    fn a_flipped_bit_is_a_checksum_error() {
        let mut w = PageWriter::new(1);
        let mut page = w.page(&[b"hello"], 0, 0).to_vec();
        page[30] ^= 1;
        let mut r = OggReader::new();
        r.feed(&page);
        assert_eq!(r.next_packet(), Err(OggError::BadChecksum));
    }

    #[test]
    fn garbage_is_not_an_ogg_stream() {
        let mut r = OggReader::new();
        r.feed(&[0u8; 100]);
        assert_eq!(r.next_packet(), Err(OggError::NoCapture));
        assert!(parse_opus_head(b"OpusHeaX...........").is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let mut r = OggReader::new();
            let mut data = b"OggS".to_vec();
            data.extend_from_slice(&bytes);
            r.feed(&data);
            while let Ok(Some(_)) = r.next_packet() {}
        }
    }
}

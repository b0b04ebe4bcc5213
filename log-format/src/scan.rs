//! Walks the frames of one segment and remembers where, and why, the valid
//! frames stop. The chain checks live in `walk.rs`, the judgement of what the
//! stop means in `tail.rs`.
use crate::error::FormatError;
use crate::frame::{decode_frame, FrameType, FRAME_HEADER_LEN};
use crate::segment::SegmentHeader;

#[derive(Debug, Clone, Copy)]
pub struct ScannedFrame<'a> {
    /// File offset of the frame's first byte.
    pub offset: u64,
    pub frame_type: FrameType,
    pub body: &'a [u8],
}

impl ScannedFrame<'_> {
    /// File offset of the frame body.
    pub fn body_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64
    }
    pub fn end(&self) -> u64 {
        self.body_offset() + self.body.len() as u64
    }
}

/// Walks frames in `buf`, whose first byte is at file offset `base`. Stops
/// at the first invalid frame and remembers why.
pub struct FrameWalk<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
    stopped: Option<FormatError>,
}

impl<'a> FrameWalk<'a> {
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Self {
            buf,
            base,
            pos: 0,
            stopped: None,
        }
    }

    /// File offset just past the last valid frame returned so far.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Restarts at file offset `offset` (a known frame boundary).
    pub fn seek(&mut self, offset: u64) {
        self.pos = (offset.saturating_sub(self.base) as usize).min(self.buf.len());
        self.stopped = None;
    }

    /// Why the walk stopped before the end of the buffer, once the iterator
    /// has returned `None`; `None` means every byte formed a valid frame.
    /// Whether that is a torn tail or corruption is `tail::judge`'s call.
    pub fn stopped(&self) -> Option<&FormatError> {
        self.stopped.as_ref()
    }
}

impl<'a> Iterator for FrameWalk<'a> {
    type Item = ScannedFrame<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped.is_some() || self.pos >= self.buf.len() {
            return None;
        }
        match decode_frame(&self.buf[self.pos..], self.offset()) {
            Ok(f) => {
                let out = ScannedFrame {
                    offset: self.offset(),
                    frame_type: f.frame_type,
                    body: f.body,
                };
                self.pos += f.total_len;
                Some(out)
            }
            Err(e) => {
                self.stopped = Some(e);
                None
            }
        }
    }
}

/// A whole segment: its header, then a walk over its frames.
pub struct SegmentScan<'a> {
    pub header: SegmentHeader,
    pub header_len: usize,
    pub frames: FrameWalk<'a>,
}

impl<'a> SegmentScan<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, FormatError> {
        let (header, header_len) = SegmentHeader::decode(buf)?;
        let mut frames = FrameWalk::new(buf, 0);
        frames.seek(header_len as u64);
        Ok(Self {
            header,
            header_len,
            frames,
        })
    }
}

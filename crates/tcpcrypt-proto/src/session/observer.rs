//! One direction's frame stream opened by an observer that holds the keys, such as a capture
//! inspector reading a key log (RFC 8548 §3.6-§3.8, §4.2). It reuses the session's receiver,
//! so frames are opened, rekeys followed and FINp honoured exactly as a host does.

use std::sync::Arc;

use crate::consts::{AeadId, Role};
use crate::crypto::CryptoProvider;
use crate::error::Error;
use crate::keys::MasterKey;
use crate::wire::frame::FrameHeader;

use super::receiver::Receiver;
use super::rekey::DirectionKeys;

/// One authenticated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedFrame {
    /// Stream offset of the frame (RFC 8548 §4.2.3; Init bytes counted, digest §5.3 A1).
    pub offset: u64,
    /// Bytes the frame occupies on the wire, header included.
    pub len: usize,
    /// The frame had rekey = 1 (§3.8).
    pub rekey: bool,
    /// The key-set generation it was opened with.
    pub generation: u64,
    /// The frame had FINp (§3.7).
    pub fin: bool,
    /// With URGp: the application-stream index of the last urgent byte (§3.7).
    pub urgent_mark: Option<u64>,
    /// The application data.
    pub data: Vec<u8>,
}

/// Opens the frames one host sent, from its master key mk\[0\] (RFC 8548 §3.3).
pub struct FrameOpener {
    provider: Arc<dyn CryptoProvider>,
    aead: AeadId,
    rx: Receiver,
}

impl FrameOpener {
    /// The opener of the frames sent with `sender`'s key (`k_ab` for A, `k_ba` for B; the
    /// *original* role for a resumed session, §3.5), starting at stream offset `init_len`
    /// (the sender's Init message length; 0 when resumed).
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] if the provider lacks `aead` or rejects the key.
    pub fn new(
        master: MasterKey,
        sender: Role,
        aead: AeadId,
        provider: Arc<dyn CryptoProvider>,
        init_len: usize,
    ) -> Result<Self, Error> {
        let alg = provider
            .aead(aead)
            .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
        let keys = DirectionKeys::new(master, sender, alg)?;
        let mut rx = Receiver::new();
        rx.start(keys, init_len);
        Ok(Self { provider, aead, rx })
    }

    /// The stream offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.rx.offset()
    }

    /// A FINp frame was opened: no frame may follow (§3.7).
    pub fn finished(&self) -> bool {
        self.rx.fin
    }

    /// Opens the frame at the start of `stream` (the bytes from [`offset`](Self::offset) on).
    /// `Ok(None)` if `stream` holds less than a whole frame.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] if the tag does not verify; a frame header or plaintext
    /// header the peer got wrong; [`Error::ApiMisuse`] for a frame after FINp.
    pub fn open_next(&mut self, stream: &[u8]) -> Result<Option<ObservedFrame>, Error> {
        if self.rx.fin {
            return Err(Error::ApiMisuse("frame after FINp"));
        }
        let header = FrameHeader::parse(stream)?;
        let Some(frame) = stream.get(..header.frame_len()) else {
            return Ok(None);
        };
        let alg = self
            .provider
            .aead(self.aead)
            .ok_or(Error::ApiMisuse("crypto provider lacks the AEAD"))?;
        let offset = self.rx.offset();
        let before = self.rx.keys.as_ref().map_or(0, DirectionKeys::generation);
        let mut buf = frame.to_vec();
        let (info, data) = self.rx.open_in_place(&mut buf, alg)?;
        // The key is dropped after FINp, so the generation is computed, not read back.
        let generation = before + u64::from(info.rekey);
        Ok(Some(ObservedFrame {
            offset,
            len: frame.len(),
            rekey: info.rekey,
            generation,
            fin: info.fin,
            urgent_mark: info.urgent_mark,
            data: buf[data].to_vec(),
        }))
    }
}

impl core::fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameOpener")
            .field("aead", &self.aead)
            .field("offset", &self.rx.offset())
            .finish_non_exhaustive()
    }
}

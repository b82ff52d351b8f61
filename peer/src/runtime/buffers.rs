//! Piece buffers that are reused instead of freed.
//!
//! Every piece received or served passes through one buffer of the piece's size (256 KiB
//! to 4 MiB). Asking the allocator for a fresh one each time costs page faults and the
//! kernel's zeroing of every new page, which showed up as several percent of a swarm's
//! CPU time. A [`BufferPool`] keeps returned buffers on a free list, bounded in bytes, so
//! that the number of buffers alive at once stays what the download budget and the
//! serving limit allow, and no more memory is ever touched.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

/// A free list of byte buffers, shared by the tasks of one torrent.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
    max_free_bytes: usize,
}

#[derive(Debug, Default)]
struct Free {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    /// A pool that keeps at most `max_free_bytes` of returned buffers.
    pub(crate) fn new(max_free_bytes: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            free: Mutex::new(Free::default()),
            max_free_bytes,
        })
    }

    /// A buffer of exactly `len` bytes; its contents are unspecified (whatever the last
    /// user left), so callers overwrite all of it.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> PooledBuffer {
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            let found = free.buffers.iter().rposition(|b| b.capacity() >= len);
            found.map(|i| {
                let buffer = free.buffers.swap_remove(i);
                free.bytes -= buffer.capacity();
                buffer
            })
        };
        let mut buffer = reused.unwrap_or_default();
        // Only growth is zeroed; a reused buffer of the same size is not touched.
        buffer.resize(len, 0);
        PooledBuffer {
            buffer,
            pool: self.clone(),
        }
    }

    /// Bytes held on the free list (for tests).
    #[cfg(test)]
    fn free_bytes(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.bytes + buffer.capacity() <= self.max_free_bytes {
            free.bytes += buffer.capacity();
            free.buffers.push(buffer);
        }
    }
}

/// A buffer that goes back to its pool when dropped. It can become the owner of a
/// [`bytes::Bytes`] handed to QUIC, in which case it returns once the bytes are sent.
#[derive(Debug)]
pub(crate) struct PooledBuffer {
    buffer: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl Deref for PooledBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_not_reallocated() {
        let pool = BufferPool::new(1 << 20);
        let first = pool.take(4096);
        let address = first.as_ptr();
        drop(first);
        assert_eq!(pool.free_bytes(), 4096);
        let again = pool.take(4096);
        assert_eq!(again.as_ptr(), address);
        assert_eq!(again.len(), 4096);
        assert_eq!(pool.free_bytes(), 0);
    }

    #[test]
    fn a_smaller_request_reuses_a_larger_buffer_with_the_right_length() {
        let pool = BufferPool::new(1 << 20);
        drop(pool.take(8192));
        let small = pool.take(100);
        assert_eq!(small.len(), 100);
        assert!(small.buffer.capacity() >= 8192);
    }

    #[test]
    fn the_free_list_is_bounded_in_bytes() {
        let pool = BufferPool::new(10_000);
        let a = pool.take(4096);
        let b = pool.take(4096);
        let c = pool.take(4096);
        drop((a, b, c));
        assert_eq!(pool.free_bytes(), 8192);
    }

    #[test]
    fn bytes_owning_a_buffer_return_it_when_dropped() {
        let pool = BufferPool::new(1 << 20);
        let mut buffer = pool.take(16);
        buffer.copy_from_slice(&[7; 16]);
        let bytes = bytes::Bytes::from_owner(buffer);
        let slice = bytes.slice(4..8);
        drop(bytes);
        assert_eq!(pool.free_bytes(), 0, "a slice still holds the buffer");
        assert_eq!(&slice[..], &[7; 4]);
        drop(slice);
        assert_eq!(pool.free_bytes(), 16);
    }
}

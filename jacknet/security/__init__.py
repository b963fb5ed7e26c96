"""Sealed links and who may send: keys (`keys`), per-datagram AEAD and the
replay rules (`seal`, pure), the link ends that seal and open (`links`),
and the receiver's allow list (`access`).  See docs/security.md."""

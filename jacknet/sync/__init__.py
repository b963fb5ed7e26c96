"""JACK transport sync across a link: the sender's side says what its JACK
transport does (`watch`), the receiver's side learns it from the packets
(`heard`) and moves its own JACK transport to match the audio it plays
(`follow`).  See docs/transport.md."""

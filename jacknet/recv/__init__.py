"""The receiver's per-stream path: reassembled packets in, audio placed on the receiver's clock."""

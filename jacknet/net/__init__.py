"""The network link: the wire format (`protocol`) and the transports that carry it (`transport`)."""

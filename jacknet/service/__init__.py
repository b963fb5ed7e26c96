"""What a daemon needs around its node: telling systemd how it is
(`notify`), answering ``jacknet status`` (`status`), and logs that read well
in the journal (`logs`)."""

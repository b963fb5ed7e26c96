"""The real-time path (C process callbacks), its Python face and the JACK binding layer."""

"""What a person watching a link sees: levels per channel (`levels`)."""

"""ctseg.data."""

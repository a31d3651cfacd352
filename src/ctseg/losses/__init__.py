"""ctseg.losses."""

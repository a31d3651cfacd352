"""ctseg.inference."""

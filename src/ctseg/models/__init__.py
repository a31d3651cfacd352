"""ctseg.models."""

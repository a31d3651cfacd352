"""ctseg.training."""

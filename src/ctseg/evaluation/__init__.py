"""ctseg.evaluation."""

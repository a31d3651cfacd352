"""ctseg.metrics."""

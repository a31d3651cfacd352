"""ctseg.preprocessing."""

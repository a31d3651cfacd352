"""ctseg.synth."""

"""The steganography codec: streaming WAV, keyed positions, ±1 matrix embedding."""

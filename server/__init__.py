"""Subtone's server side: the steganography codec, the API, the worker and the stack around them."""

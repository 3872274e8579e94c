"""Uploads straight to storage through pre-signed part URLs, and the objects they make."""

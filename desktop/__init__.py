"""Subtone's clients: the Qt desktop app, and the Qt-free client core it shares with the CLI."""

"""The Qt-free client core shared by the desktop app and the CLI."""

"""What the client and the server both run: the codec, the protocol's schemas, the error type.

This package imports no FastAPI, Dramatiq, Redis or Qt (``.importlinter`` keeps it so): the
desktop app and the CLI (``desktop/``), the stack (``server/``) and the Triton models
(``model_repository/``) all import it, and it imports none of them.
"""

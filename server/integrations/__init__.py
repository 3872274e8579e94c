"""Adapters to the outside world: object storage, Triton, Redis, the broker."""

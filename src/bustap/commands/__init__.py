"""Subcommands of ``bustap``: one module each, with ``register(subparsers)``."""

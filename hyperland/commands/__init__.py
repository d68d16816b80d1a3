"""Subcommands of the ``hyperland`` CLI, one module each (see hyperland.cli)."""

"""Defaults shared by the library and the CLI, defined once here (a module with no imports, so that the CLI can
show them in ``--help`` without importing torch)."""

DEFAULT_MODEL = "mtfl-dense-r18"  # the embedded model: hyperland.load() with no name and every CLI --model default

__all__ = ["DEFAULT_MODEL"]

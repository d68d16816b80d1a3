"""``python -m hyperland.train`` and ``torchrun ... -m hyperland.train``."""

from .cli import main

raise SystemExit(main())

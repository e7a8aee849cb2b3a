"""Deprecated name of :mod:`semsearch.alembic` (semsearch 0.1.0's); import that instead.

Kept so that ``env.py`` files and migrations written for 0.1.0 go on working.
"""

from __future__ import annotations

import warnings

from semsearch.alembic import *  # noqa: F403  (registers the operations, as before)
from semsearch.alembic import __all__  # noqa: F401

warnings.warn(
    "semsearch.alembic_ops is now semsearch.alembic: change the import in env.py and your migrations",
    DeprecationWarning,
    stacklevel=2,
)

"""The ``semsearch`` command: each module registers its commands on :data:`main`.

To add commands, write a module that imports ``main`` from :mod:`semsearch.cli.app`
and decorates its functions with ``@main.command()``, then name it in the import
list below.

Example::

    from semsearch.cli import main

    main(["search", "docs", "rotate the logs"])
"""

from semsearch.cli import (  # noqa: F401  (they register)
    collections,
    data,
    db,
    demo,
    distribute,
    models,
    quality,
    search,
    server,
    sync,
)
from semsearch.cli.app import Group, main

__all__ = ["Group", "main"]

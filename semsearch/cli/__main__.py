"""``python -m semsearch.cli``: the same as the ``semsearch`` command."""

from semsearch.cli import main

if __name__ == "__main__":
    main(prog_name="semsearch")

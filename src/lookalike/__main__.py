"""``python -m lookalike``: the same as the ``lookalike`` command."""

from lookalike.cli import main

if __name__ == "__main__":
    main()

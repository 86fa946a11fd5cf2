"""``python -m processor`` runs the same command line as ``wardbulk``."""

from processor.cli import main

if __name__ == "__main__":
    main()

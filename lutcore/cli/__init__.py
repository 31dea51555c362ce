"""The ``lut`` command. Torch-free; applications add subcommands through the
``lut.commands`` entry-point group (a function taking argparse's subparsers).
"""

from lutcore.cli.main import main

__all__ = ["main"]

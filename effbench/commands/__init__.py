"""CLI sub-commands, one module each (see :mod:`effbench.cli`)."""

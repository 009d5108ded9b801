"""Console scripts: one module per script, all sharing :mod:`mmconv.cli.common`."""

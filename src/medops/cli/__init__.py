"""The ``medops`` command line."""

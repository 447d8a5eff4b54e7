"""medops: evaluate, gate, monitor and improve medical language models on your own machines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

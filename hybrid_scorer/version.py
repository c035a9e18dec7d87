"""The installed package's version, in a module of its own so submodules never import the package root."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hybrid-scorer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

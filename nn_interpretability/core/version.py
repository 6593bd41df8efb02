"""The package version, at the bottom layer so that any module (the zoo's metadata) can read it."""
__version__ = "0.1.0"

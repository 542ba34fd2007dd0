"""lockd: coordination between coding agents sharing a repository."""

__version__ = "0.1.0"

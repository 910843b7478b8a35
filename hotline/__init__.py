"""hotline: call management for Vietnamese social-work hotlines."""

__version__ = "0.1.0"

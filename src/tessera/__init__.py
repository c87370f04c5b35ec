"""Tessera: authentication and authorization for Django REST Framework."""

__version__ = "0.1.0.dev0"

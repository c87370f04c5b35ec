"""The service layer: every rule about sessions, tokens and accounts lives here once.

Views parse input and shape output; they call these functions and nothing else
changes state.

Internal API: these modules may change between releases. Projects build on the public
modules instead: ``tessera.authentication``, ``tessera.permissions``, ``tessera.errors``,
``tessera.signals``, ``tessera.views``, ``tessera.urls``, ``tessera.models`` and
``tessera.cache``.
"""

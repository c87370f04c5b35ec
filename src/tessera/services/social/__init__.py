"""Social sign-in: OpenID Connect providers, Google, Microsoft and GitHub (docs/social.md).

:mod:`.providers` talks to the providers, :mod:`.flow` runs the redirect and native
sign-ins into the login pipeline, :mod:`.accounts` decides which account an identity
signs in to and links or unlinks identities.
"""

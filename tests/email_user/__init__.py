"""A user model whose login field is the e-mail address, without PermissionsMixin, to test
the account flows and the admin checks on it.

Installed only by ``tests/settings_email_user.py``: AUTH_USER_MODEL cannot change inside
one process, so ``make test`` runs these tests in a second pytest invocation.
"""

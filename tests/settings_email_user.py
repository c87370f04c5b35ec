"""The test settings with a custom user model that logs in by e-mail.

Run with ``pytest --ds=tests.settings_email_user tests/test_accounts_email_user.py``
(``make test`` does).
"""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.email_user"]  # noqa: F405
AUTH_USER_MODEL = "email_user.EmailUser"

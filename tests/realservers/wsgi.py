"""The WSGI application gunicorn serves (settings: :mod:`tests.realservers.site_settings`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.realservers.site_settings")
application = get_wsgi_application()

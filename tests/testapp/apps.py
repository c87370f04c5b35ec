from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """The suite's own project: a few views guarded by Tessera, as an application's would be."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

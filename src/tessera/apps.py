from django.apps import AppConfig


class TesseraConfig(AppConfig):
    name = "tessera"
    verbose_name = "Tessera authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audit_receivers, receivers  # noqa: F401  (connect the signal receivers)
        from .checks import register_checks

        register_checks()

from django.apps import AppConfig, apps


class TesseraConfig(AppConfig):
    name = "tessera"
    verbose_name = "Tessera authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audit_receivers, receivers  # noqa: F401  (connect the signal receivers)
        from .checks import register_checks
        from .services import emails  # noqa: F401  (sends a request's e-mails after it)

        register_checks()
        if apps.is_installed("django.contrib.admin"):
            # The admin has discovered every app's admin module by now when it is listed
            # before Tessera, as Django's own apps are.
            from .admin import add_unlock_action

            add_unlock_action()

"""drf-spectacular descriptions of Tessera's authentication classes and custom fields.

Imported only when drf-spectacular is installed (the ``openapi`` extra); defining the
classes registers them with drf-spectacular, so every Tessera view's security
requirements appear in the generated schema, and its fields get their real types.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "tessera.authentication.TokenAuthentication"
    name = "tesseraToken"
    priority = 1
    description = "Opaque token from `login/`: `Token tsr1_…` (`Bearer` also works)."

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": self.description,
        }


class ImportedTokenScheme(TokenScheme):
    target_class = "tessera.authentication.ImportedTokenAuthentication"
    name = "tesseraImportedToken"
    priority = 2
    description = "A DRF authtoken or knox token imported into Tessera: `Token <key>`."


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "tessera.authentication.JWTAuthentication"
    name = "tesseraJWT"
    priority = 2

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class ExternalJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tessera.authentication.ExternalJWTAuthentication"
    name = "externalJWT"
    priority = 2

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token of a trusted issuer (TRUSTED_ISSUERS).",
        }


class BrowserSessionScheme(OpenApiAuthenticationExtension):
    target_class = "tessera.authentication.SessionAuthentication"
    name = "tesseraSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "Browser session from `session/login/`; unsafe requests need "
            "the X-CSRFToken header.",
        }


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "tessera.authentication.BasicAuthentication"
    name = "tesseraBasic"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "HTTPS only; off by default."}


class PrimaryKeyFieldSchema(OpenApiSerializerFieldExtension):
    """``id`` typed as its model's primary key: an integer, a UUID…"""

    target_class = "tessera.serializers.fields.PrimaryKeyField"

    def map_serializer_field(self, auto_schema, direction):
        model = self.target.parent.Meta.model
        # drf-spectacular's own contrib extensions map model fields through this method.
        return auto_schema._map_model_field(model._meta.pk, direction)

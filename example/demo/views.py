"""The demo's endpoints, written as an application using Tessera would.

- ``api/protected/``: any logged-in user.
- ``api/admin-content/``, ``api/manager-content/``, ``api/hr-content/``: one role each.
- ``api/posts/``: a public board. Anyone reads; writing needs the model permission
  (from a group), a credential with the ``posts:write`` scope, and ownership of the
  post, unless the writer is an Admin moderating.
- ``api/my-posts/``: the user's own posts only. Another user's post id is 404; reading
  needs ``posts:read`` and writing ``posts:write``.
- ``/``: the demo page, every flow of Tessera from plain HTML and JavaScript (docs/demo.md).
- ``passkeys/``: a page that registers a passkey and logs in with it (docs/passkeys.md).
"""

from django.views.generic import TemplateView
from rest_framework import serializers, viewsets
from rest_framework.permissions import (
    DjangoModelPermissions,
    DjangoModelPermissionsOrAnonReadOnly,
    IsAuthenticated,
)
from rest_framework.response import Response
from rest_framework.views import APIView

from demo.management.commands.demo_seed import DEMO_USERS
from demo.models import Post
from tessera.conf import tessera_settings
from tessera.permissions import (
    HasRole,
    IsAdmin,
    IsOwnerOrReadOnly,
    OwnedObjectsMixin,
    TokenHasReadWriteScope,
)
from tessera.schema import document


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class ProtectedView(APIView):
    permission_classes = [IsAuthenticated]

    @document(responses=MessageSerializer)
    def get(self, request):
        return Response({"message": f"Hello, {request.user.get_username()}."})


class AdminContentView(APIView):
    permission_classes = [IsAdmin]

    @document(responses=MessageSerializer)
    def get(self, request):
        return Response({"message": "Admin content."})


class ManagerContentView(APIView):
    permission_classes = [HasRole("Manager")]

    @document(responses=MessageSerializer)
    def get(self, request):
        return Response({"message": "Manager content."})


class HRContentView(APIView):
    permission_classes = [HasRole("HR")]

    @document(responses=MessageSerializer)
    def get(self, request):
        return Response({"message": "HR content."})


class PostSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)

    class Meta:
        model = Post
        fields = ["id", "owner", "title", "body", "created_at"]
        read_only_fields = ["id", "owner", "created_at"]


class BoardScopes(TokenHasReadWriteScope):
    read_scope = None
    write_scope = "posts:write"


class PostViewSet(viewsets.ModelViewSet):
    queryset = Post.objects.select_related("owner")
    serializer_class = PostSerializer
    permission_classes = [
        # IsAuthenticatedOrReadOnly, plus demo.add_post / change_post / delete_post for
        # writes, granted through groups by demo_seed.
        DjangoModelPermissionsOrAnonReadOnly,
        BoardScopes,
        IsOwnerOrReadOnly | IsAdmin,
    ]

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)


class PostScopes(TokenHasReadWriteScope):
    read_scope = "posts:read"
    write_scope = "posts:write"


class MyPostViewSet(OwnedObjectsMixin, viewsets.ModelViewSet):
    queryset = Post.objects.select_related("owner")
    serializer_class = PostSerializer
    permission_classes = [IsAuthenticated, DjangoModelPermissions, PostScopes]


class PasskeysPage(TemplateView):
    """Plain HTML and JavaScript calling Tessera's endpoints, as a front end would."""

    template_name = "demo/passkeys.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "rp_id": tessera_settings.WEBAUTHN_RP_ID}


class DemoPage(TemplateView):
    """Every flow against ``api/auth/``, from the page as a front end would call them.

    The demo users' passwords are public (demo_seed prints them), so the page lists them.
    """

    template_name = "demo/index.html"

    def get_context_data(self, **kwargs):
        users = [
            {
                "username": name,
                "password": password,
                "flags": [*roles, *["staff"] * staff, *["superuser"] * superuser],
            }
            for name, password, roles, staff, superuser in DEMO_USERS
        ]
        return {
            **super().get_context_data(**kwargs),
            "site_name": tessera_settings.SITE_NAME,
            "demo_users": users,
            "scopes": sorted(tessera_settings.SCOPES.items()),
            "rp_id": tessera_settings.WEBAUTHN_RP_ID,
        }


class SocialPage(TemplateView):
    """The front end's social_callback page: it trades the code for a token."""

    template_name = "demo/social.html"

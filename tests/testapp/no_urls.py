"""A project that mounts no Tessera endpoint."""

urlpatterns: list = []

"""The demo's protected endpoints, written as an application using Tessera would."""

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class ProtectedView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"message": f"Hello, {request.user.get_username()}."})


class AdminContentView(ProtectedView):
    def get(self, request):
        return Response({"message": "Admin content."})


class ManagerContentView(ProtectedView):
    def get(self, request):
        return Response({"message": "Manager content."})


class HRContentView(ProtectedView):
    def get(self, request):
        return Response({"message": "HR content."})

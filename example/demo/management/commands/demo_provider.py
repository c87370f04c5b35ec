from django.core.management.base import BaseCommand

from demo.provider import CLIENT_ID, DEFAULT_PORT, USERS, serve


class Command(BaseCommand):
    help = (
        "Serve the demo OpenID provider on 127.0.0.1 (default port 8001), so that "
        "'Sign in with the demo provider' works with no internet. Stop it with Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)

    def handle(self, *args, port: int, **options):
        server = serve(port)
        # Demo credentials only: printed on purpose.
        users = ", ".join(f"{name} / {user['password']}" for name, user in USERS.items())
        self.stdout.write(
            f"Demo OpenID provider at http://127.0.0.1:{port} (client {CLIENT_ID}); user {users}.",
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

"""The load scenario's password hasher: the fast one, counting its runs in Redis.

bench/load.py reads the counts to tell how many login attempts of a credential-stuffing
burst reached the hasher. A burst's passwords start with :data:`BURST_PASSWORD_PREFIX`,
so its runs are counted apart from the simulated users' logins; the counts are shared by
every worker of the server.
"""

from functools import cache

import redis
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher

BURST_PASSWORD_PREFIX = "stuffed-"
BURST_RUNS_KEY = "bench:load:hasher-runs:burst"
OTHER_RUNS_KEY = "bench:load:hasher-runs:other"


@cache
def counters() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


class CountingPasswordHasher(MD5PasswordHasher):
    """MD5PasswordHasher, counting every hash it computes.

    Both hashing a new password and checking one end in ``encode`` (``verify``
    recomputes the hash with the stored salt), so counting there counts each run once.
    """

    def encode(self, password: str, salt: str) -> str:
        burst = password.startswith(BURST_PASSWORD_PREFIX)
        counters().incr(BURST_RUNS_KEY if burst else OTHER_RUNS_KEY)
        return super().encode(password, salt)

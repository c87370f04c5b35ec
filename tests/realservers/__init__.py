"""Real servers for the tests that need more than one process: Redis, PostgreSQL and
gunicorn app servers, each started on a free loopback port in a temporary directory and
stopped when the tests end (see :mod:`tests.realservers.services`)."""

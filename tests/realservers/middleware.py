"""Which worker process answered: tests keep one connection per worker to reach each."""

import os

PID_HEADER = "X-Worker-Pid"


def worker_pid_header(get_response):
    def middleware(request):
        response = get_response(request)
        response[PID_HEADER] = str(os.getpid())
        return response

    return middleware

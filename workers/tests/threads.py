"""Running test code in several threads at once, as a worker's threads run."""

import threading

from django.db import connection


def in_threads(n, fn, timeout=60):
    """fn(i) in n threads started together, each on its own database connection; their
    results, in order. An exception in a thread is raised here once all have ended."""
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 (raised in the caller's thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    return results

"""gunicorn settings for Scell (``gunicorn scell.wsgi``); every value can be overridden by the
environment or the command line."""

import os

from invoicing.validation.warmup import gunicorn_post_fork as post_fork  # noqa: F401 - gunicorn hook

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Processes rather than threads: saxonche (the EN 16931 / BR-FR validation) holds the GIL while it runs,
# so threads of one worker validate one at a time, and a thread holding a tenant's numbering lock waits
# for the GIL behind another's Schematron. Measured on 2 vCPUs (bench/RESULTS.md): 4 workers × 2 threads
# issue more invoices per second than 2 × 4. Each worker holds its compiled stylesheets (~400 MiB).
workers = int(os.environ.get("GUNICORN_WORKERS", str(max(2, 2 * (os.cpu_count() or 1)))))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# The validation engine (saxonche) must start in each worker, never in the master: no preload.
preload_app = False
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None

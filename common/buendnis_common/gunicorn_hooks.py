"""gunicorn's hooks for the metrics of all its workers on one port (``gunicorn.conf.py`` imports
them). With ``METRICS_PORT`` set, the master empties the workers' shared value directory before
it forks them (``PROMETHEUS_MULTIPROC_DIR``, see ``buendnis_common.metrics``), serves the sum of
their figures on that port once it is ready, and marks an exited worker dead. Without it nothing
happens here."""
import os

_port = os.environ.get("METRICS_PORT", "").strip()
if _port:
    # Imported by the master before the app: the workers inherit the emptied directory.
    from buendnis_common.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(int(_port))


def when_ready(server):
    if _port:
        from buendnis_common import metrics

        if metrics.serve(int(_port)) is not None:
            server.log.info("metrics on http://%s:%s/metrics",
                            os.environ.get("METRICS_HOST", "127.0.0.1"), _port)


def child_exit(server, worker):
    if _port:
        from buendnis_common import metrics

        metrics.process_dead(worker.pid)

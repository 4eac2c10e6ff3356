"""gunicorn's one configuration, for every web role (`buendnis <component> web`, the Procfile,
the image, the tests' platform).

The access log names method and path, never the query string: a search can carry a person's name
(``%(U)s`` is the path alone). The component (``BUENDNIS_COMPONENT``, set by the ``buendnis`` entry
point) picks its worker shape: the gateway and the web front end wait on other services, so they
run threads; intake answers list imports of up to 20,000 rows, so its workers may take longer.
Options given on the command line (``--bind`` in the Procfile) win over this file.
"""

import os

accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'
errorlog = "-"
# gunicorn's control socket (25.1 and later: `gunicornc` may add workers or reload) is a management
# surface nobody here uses; it defaults to a path under $HOME, which in the image is /nonexistent,
# so each web role logged an ERROR at start.
control_socket_disable = True

_SHAPES = {
    "intake": {"timeout": 150},
    "referrals": {},
    "notifications": {},
    "gateway": {"worker_class": "gthread", "threads": 8, "preload_app": True},
    "web": {"worker_class": "gthread", "threads": 4},
}

_component = os.environ.get("BUENDNIS_COMPONENT", "")
if _component:
    bind = os.environ.get("BUENDNIS_BIND", "0.0.0.0:8000")
    workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
    globals().update(_SHAPES.get(_component, {}))
    # Behind the compose network or a Kubernetes Service: the forwarded headers of the web front
    # end are judged by the gateway itself (GATEWAY_TRUSTED_PROXIES), not by gunicorn.
    forwarded_allow_ips = "127.0.0.1"

# Prometheus: every worker's figures on the process's METRICS_PORT (buendnis_common.metrics).
from buendnis_common.gunicorn_hooks import child_exit, when_ready  # noqa: E402, F401

"""The gateway's Celery app, for `celery -A gateway.worker worker -Q gateway`: it appends every
service's audit entries to the hash-chained audit trail."""
from gateway.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

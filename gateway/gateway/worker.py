"""The gateway's Celery app, for `celery -A gateway.worker worker -Q gateway` (it appends every
service's audit entries to the sealed audit trail) and `celery -A gateway.worker beat` (the
outbox sweep and the audit trail's checkpoints outside the database)."""
from gateway.app import create_app
from gateway.audit.handlers import register_checkpoints

flask_app = create_app()
celery = flask_app.extensions["celery"]
register_checkpoints(flask_app.extensions["buendnis"])

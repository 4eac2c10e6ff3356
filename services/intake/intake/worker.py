"""The intake Celery app, for `celery -A intake.worker worker` and `... beat`."""
from intake.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

"""The notifications Celery app, for `celery -A notifications.worker worker` and `... beat`."""
from notifications.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

"""The referrals Celery app, for `celery -A referrals.worker worker` and `... beat`."""
from referrals.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

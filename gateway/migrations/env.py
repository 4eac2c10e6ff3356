from buendnis_common.migrate import run_migrations
from gateway.models import Base

run_migrations(Base.metadata)

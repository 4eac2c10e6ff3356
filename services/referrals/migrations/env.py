from buendnis_common.migrate import run_migrations
from referrals.models import Base

run_migrations(Base.metadata)

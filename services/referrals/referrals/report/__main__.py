"""``python -m referrals.report rebuild``: recount the reports' aggregate from the referrals.

Run it once after upgrading a database that already held referrals (the migration leaves the
aggregate unbuilt there, and the reports count from the referrals until then), after loading
referrals by SQL, or whenever its figures are in doubt. It takes ``REFERRALS_DATABASE_URL`` (or
``--database-url``), works in one transaction, and on PostgreSQL holds changes to referrals back
until it commits (seconds for a million referrals). It prints counts only.
"""
from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy.orm import Session

from buendnis_common.db import make_engine
from buendnis_common.settings import ServiceSettings
from referrals import models  # noqa: F401 - every table known
from referrals.report import aggregate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m referrals.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["rebuild"])
    parser.add_argument("--database-url", help="instead of REFERRALS_DATABASE_URL")
    args = parser.parse_args(argv)
    url = args.database_url or ServiceSettings.from_env("referrals").database_url
    engine = make_engine(url)
    started = time.monotonic()
    try:
        with Session(engine) as session, session.begin():
            counted = aggregate.rebuild(session)
    finally:
        engine.dispose()
    print(f"rebuilt in {time.monotonic() - started:.1f} s: {counted['alliances']} alliances, "
          f"{counted['persons']} persons in them, {counted['answer_times']} answer times")
    return 0


if __name__ == "__main__":
    sys.exit(main())

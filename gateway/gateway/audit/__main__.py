"""``python -m gateway.audit verify``: check the audit trail's sealed chain, and hold it against
the checkpoints in ``AUDIT_CHECKPOINT_DIR``; exit 1 and name the first broken entry if anything
was changed, removed, rewritten or truncated."""
from __future__ import annotations

import sys

from buendnis_common.db import Database
from buendnis_common.settings import ServiceSettings
from gateway.audit import chain


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["verify"]:
        print("usage: python -m gateway.audit verify")
        return 2
    db = Database(ServiceSettings.from_env("gateway").database_url)
    try:
        with db.Session() as session:
            verdict = chain.verify(session, keys=chain.chain_keys(),
                                   directory=chain.checkpoint_dir())
    finally:
        db.dispose()
    print(verdict)
    return 0 if verdict.intact else 1


if __name__ == "__main__":
    raise SystemExit(main())

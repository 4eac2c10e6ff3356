#!/bin/bash
# One database and one owning login role per service (intake, referrals,
# notifications, and the gateway for the audit trail): no service can read another's tables.
#
# Run by the postgres image from /docker-entrypoint-initdb.d/ on the first
# start of an empty data volume only. Changing a *_DB_PASSWORD later needs
# `ALTER ROLE … PASSWORD …` by hand or a fresh volume.
#
# Passwords come from the container environment (docker-compose.yml passes
# INTAKE_DB_PASSWORD, REFERRALS_DB_PASSWORD, NOTIFICATIONS_DB_PASSWORD, GATEWAY_DB_PASSWORD,
# GATEWAY_APP_DB_PASSWORD).
set -euo pipefail

create_service_database() {
    local service="$1"
    local password_var="${service^^}_DB_PASSWORD"
    local password="${!password_var:-}"
    if [[ -z "$password" ]]; then
        echo "init-databases: ${password_var} is not set" >&2
        exit 1
    fi
    echo "init-databases: creating role and database '${service}'"
    # psql variables (:"name" quotes an identifier, :'name' a literal), so no
    # value is ever spliced into SQL text by the shell.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v role="$service" -v db="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
SQL
}

for service in intake referrals notifications gateway; do
    create_service_database "$service"
done

# The running gateway's role: it may only append to and read the audit trail. The gateway's
# migration (as the owner, gateway) grants it exactly that; it can connect, no more.
if [[ -z "${GATEWAY_APP_DB_PASSWORD:-}" ]]; then
    echo "init-databases: GATEWAY_APP_DB_PASSWORD is not set" >&2
    exit 1
fi
echo "init-databases: creating the gateway's runtime role 'gateway_app'"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v password="$GATEWAY_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE gateway_app LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE gateway TO gateway_app;
SQL

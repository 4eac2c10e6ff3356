"""``create_app()``: verify the token, route to the owning service, report health."""
from __future__ import annotations

import redis
import requests
from flask import Flask, Response, g, request
from flask_swagger_ui import get_swaggerui_blueprint

from buendnis_common import metrics, policy, tracing
from buendnis_common.auth import TokenVerifier
from buendnis_common.errors import Api, NotFound, register_error_handlers
from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import env_str
from buendnis_common.web import authenticator, configure_logging, install_request_ids
from gateway import identity, organizations, protection
from gateway.audit import chain
from gateway.audit import views as audit_views
from gateway.audit.handlers import handlers as audit_handlers
from gateway.config import GatewaySettings
from gateway.db import MODELS
from gateway.openapi import MergedDocument
from gateway.proxy import Proxy
from gateway.routes import owner

PUBLIC_PATHS = ("/healthz", "/readyz", "/api/openapi.json")
DOCS_PREFIX = "/api/docs"


def check_secrets() -> None:
    """Outside development no gateway process (server, worker, migration) starts without a
    real audit chain key (``buendnis_common.migrate`` calls this too)."""
    chain.chain_keys()


def route_template(request) -> str:
    """The metrics' route label: the policy's template of a forwarded API path
    (``/api/v1/participants/<participant_id>``), never the concrete path. The policy check
    found it already (``g.policy_route``); a request refused before that is matched here."""
    if request.path.startswith("/api/v1/"):
        template = g.get("policy_route") or policy.template(request.path, request.method)
        if template:
            return template
    return metrics.flask_route(request)


def create_app(settings: GatewaySettings | None = None) -> Flask:
    check_secrets()
    settings = settings or GatewaySettings.from_env()
    configure_logging(env_str("LOG_LEVEL", "INFO"))
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Bündnis",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=None,  # the merged document is served at /api/openapi.json
    )
    verifier = TokenVerifier(settings.oidc)
    runtime = ServiceRuntime(settings.runtime_settings(), models=MODELS, handlers=audit_handlers,
                             verifier=verifier)
    runtime.bind(app)
    proxy = Proxy(settings.service_urls, connect_timeout=settings.connect_timeout,
                  read_timeout=settings.read_timeout)
    app.extensions["gateway"] = {"verifier": verifier, "proxy": proxy, "settings": settings}

    api = Api(app)
    for blueprint in (identity.blp, organizations.blp, audit_views.blp):
        api.register_blueprint(blueprint)
    register_error_handlers(app)
    metrics.instrument_flask(app, route=route_template)
    tracing.instrument_flask(app)
    install_request_ids(app)
    # The token check and the rate limits (per address, per user, the open directory's) in one
    # hook, counted in one Redis round trip.
    app.extensions["gateway"]["limits"] = protection.install_rate_limits(
        app, authenticate=authenticator(verifier, PUBLIC_PATHS, public_prefixes=(DOCS_PREFIX,)),
        storage_uri=settings.redis_url, per_address=settings.rate_limit_per_address,
        per_user=settings.rate_limit_per_user,
        hsds_per_address=settings.rate_limit_hsds_per_address,
        trusted_proxies=settings.trusted_proxies)
    protection.install_headers_and_cors(app, cors_origins=settings.cors_origins)

    @app.before_request
    def _apply_policy():
        if not request.path.startswith("/api/v1/") or request.method == "OPTIONS":
            return None
        # The same table every service applies again on its own (buendnis_common.policy).
        decision = policy.decide(g.principal, request.path, request.method, request.args)
        g.policy_route = decision.route
        policy.enforce(decision)
        return None

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "service": "gateway"}

    document = MergedDocument(settings.service_urls, api.spec.to_dict())

    @app.get("/api/openapi.json")
    def openapi_json():
        return Response(document.json(), mimetype="application/json")

    app.register_blueprint(get_swaggerui_blueprint(
        DOCS_PREFIX, "/api/openapi.json",
        config={"app_name": "Bündnis API", "persistAuthorization": False},
    ))

    @app.get("/readyz")
    def readyz():
        checks: dict[str, str] = {}
        for name, url in settings.service_urls.items():
            try:
                ok = requests.get(f"{url}/healthz", timeout=1.0).status_code == 200
                checks[name] = "ok" if ok else "unhealthy"
            except requests.RequestException:
                checks[name] = "unreachable"
        try:
            redis.Redis.from_url(settings.redis_url, socket_timeout=1,
                                 socket_connect_timeout=1).ping()
            checks["redis"] = "ok"
        except redis.RedisError:
            checks["redis"] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return body, 200 if ready else 503

    # The open offer directory (HSDS 3.0): public in the shared policy (no token, the limit
    # above); the referrals service answers it and publishes only offers marked public.
    @app.get("/hsds/")
    @app.get("/hsds/<path:_rest>")
    def hsds(_rest: str = ""):
        if not policy.is_public(request.path, request.method):
            raise NotFound("policy.no_such_endpoint")
        return proxy.forward("referrals", anonymous=True)

    # Participants answer reminders (public in the shared policy, no token). The SMS provider's
    # webhook: its signature travels on, and the notifications service checks it itself; the
    # link of an e-mail reminder, which the referrals service checks.
    @app.post("/webhooks/sms/inbound")
    def sms_inbound():
        return proxy.forward("notifications", anonymous=True,
                             extra_headers=("X-Twilio-Signature",))

    @app.route("/answers/<_token>", methods=["GET", "POST"])
    def answer_link(_token: str):
        return proxy.forward("referrals", anonymous=True)

    @app.route("/api/v1/<path:_rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def forward(_rest: str):
        service = owner(request.path)
        if service is None:
            raise NotFound("policy.no_such_endpoint")
        return proxy.forward(service)

    return app

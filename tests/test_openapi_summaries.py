"""Every service's API document, loaded in-process: every operation has a summary (the view's
docstring), every API blueprint is the shared one, and its lists refuse a page number past the
bound with 422 instead of failing in the database (500)."""
from __future__ import annotations

import flask_smorest
import pytest
from flask import Flask
from flask.views import MethodView

from buendnis_common import web
from gateway.openapi import HTTP_METHODS, merge

SERVICES = ("intake", "referrals", "notifications")


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """Each service's and the gateway's app, built as gunicorn builds them (nothing started)."""
    workdir = tmp_path_factory.mktemp("openapi")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # nothing is sent
        for name in (*SERVICES, "gateway"):
            env.setenv(f"{name.upper()}_DATABASE_URL", f"sqlite:///{workdir}/{name}.sqlite3")
        from gateway.app import create_app as gateway
        from intake.app import create_app as intake
        from notifications.app import create_app as notifications
        from referrals.app import create_app as referrals

        yield {"intake": intake(), "referrals": referrals(), "notifications": notifications(),
               "gateway": gateway()}


def documents(apps) -> dict[str, dict]:
    found = {name: apps[name].test_client().get("/openapi.json").get_json()
             for name in SERVICES}
    (gateway_api,) = [entry["ext_obj"] for entry in
                      apps["gateway"].extensions["flask-smorest"]["apis"].values()]
    found["gateway"] = gateway_api.spec.to_dict()
    return found


def without_summary(document: dict) -> list[str]:
    return [f"{method.upper()} {path}"
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if method in HTTP_METHODS and not (operation.get("summary") or "").strip()]


def test_every_operation_of_every_document_has_a_summary(apps):
    docs = documents(apps)
    for name, document in docs.items():
        assert len(document["paths"]) >= 3, name
        assert without_summary(document) == [], f"{name}: operations without a docstring"
    assert without_summary(merge(docs)) == []  # the gateway's /api/openapi.json


def test_the_check_finds_an_operation_without_a_docstring():
    app = Flask("undocumented")
    app.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    api = flask_smorest.Api(app)
    blp = web.Blueprint("things", "things", url_prefix="/things")

    @blp.route("")
    class Things(MethodView):
        @blp.response(200)
        def get(self):
            return []

    api.register_blueprint(blp)
    assert without_summary(api.spec.to_dict()) == ["GET /things"]


def test_every_api_blueprint_is_the_shared_one(apps):
    for name, app in apps.items():
        smorest = [bp for bp in app.blueprints.values()
                   if isinstance(bp, flask_smorest.Blueprint)]
        assert smorest, name
        assert all(isinstance(bp, web.Blueprint) for bp in smorest), name


def paginated_app(blueprint_class) -> Flask:
    app = Flask("pages")
    app.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    api = flask_smorest.Api(app)
    blp = blueprint_class("things", "things", url_prefix="/things")

    @blp.route("")
    class Things(MethodView):
        @blp.response(200)
        @blp.paginate(page_size=25, max_page_size=100)
        def get(self, pagination_parameters):
            """Things."""
            pagination_parameters.item_count = 3
            return [{"offset": pagination_parameters.first_item}]

    api.register_blueprint(blp)
    return app


def test_a_page_past_the_bound_is_refused_with_422():
    client = paginated_app(web.Blueprint).test_client()
    assert client.get("/things?page=2").status_code == 200
    assert client.get(f"/things?page={web.MAX_PAGE}").status_code == 200
    for huge in (web.MAX_PAGE + 1, 10**19, 10**40):
        refused = client.get(f"/things?page={huge}")
        assert refused.status_code == 422, huge
        assert "page" in str(refused.get_json())
    assert client.get("/things?page=0").status_code == 422
    # flask-smorest's own blueprint lets the huge page through to the query.
    assert paginated_app(flask_smorest.Blueprint).test_client().get(
        f"/things?page={10**19}").status_code == 200

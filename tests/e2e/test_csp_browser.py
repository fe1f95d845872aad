"""The Content-Security-Policy does not break the admin or the Swagger UI: in headless
Chromium, each page renders and the browser reports no CSP violation."""

from __future__ import annotations

import pytest

from tests.conftest import _user
from tests.e2e.test_approval_browser import chromium  # noqa: F401 - the browser fixture

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.mark.django_db(transaction=True)
def test_admin_and_swagger_ui_work_under_the_csp(chromium, live_server, credit_version):  # noqa: F811
    from approvals import services as approvals

    admin = _user("csp-admin", is_superuser=True)
    _user("csp-validator", "model-validator")  # someone who can decide the request
    request = approvals.promotion_request_file(
        actor=credit_version.model.owner,
        version=credit_version,
        to_stage="staging",
        justification="Validated.",
    )
    context = chromium.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    console = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    violations = []
    failed = []  # any resource the pages load
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )

    def visit(path: str, ready: str) -> None:
        response = page.goto(f"{live_server.url}{path}")
        assert "Content-Security-Policy" in response.headers or any(
            h.lower() == "content-security-policy" for h in response.headers
        ), path
        page.wait_for_selector(ready)
        page.wait_for_timeout(300)  # late violations (scripts run after load)
        violations.extend(f"{path}: {v}" for v in page.evaluate("window.__csp"))

    visit("/admin/login/?next=/admin/", "#id_username")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", f"pw-{admin.username}")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    visit("/admin/", "#content-main")
    visit("/admin/registry/registeredmodel/", "#result_list")
    visit(f"/admin/registry/registeredmodel/{credit_version.model.pk}/change/", "#content-main")
    visit(f"/admin/registry/modelversion/{credit_version.pk}/change/", "#content-main")
    visit("/admin/registry/modelversion/add/", "#content-main")
    visit("/admin/approvals/approvalqueue/", "#content-main")
    # The evidence page: its styles are a stylesheet, its drawing scaled by CSS.
    visit(f"/admin/approvals/promotionrequest/{request.pk}/change/", "#lineage")
    # Swagger UI loads the schema and draws every operation.
    visit("/api/v1/docs/", ".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert not violations, violations
    assert not console, console
    assert not failed, failed
    context.close()

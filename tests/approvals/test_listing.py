"""Reading promotions: lists and filters, the detail with policy progress, stage history and
"which version was where" at a moment."""

from datetime import timedelta
from urllib.parse import quote

from django.utils import timezone

from approvals import services
from approvals.models import StageTransition

LIST = "/api/v1/promotions"


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [r["id"] for r in response.json()["results"]]


def test_list_filters_by_status_model_and_stage(api, file, decide, make_version, approvers, owner):
    approved = file(make_version(), "staging")
    decide(approved, approvers["validator"])
    pending = file(make_version(), "staging")
    client = api(owner)
    assert _ids(client.get(f"{LIST}?status=pending")) == [pending.pk]
    assert _ids(client.get(f"{LIST}?status=approved")) == [approved.pk]
    assert set(_ids(client.get(f"{LIST}?model=credit-scoring"))) == {approved.pk, pending.pk}
    assert _ids(client.get(f"{LIST}?model=other")) == []
    assert _ids(client.get(f"{LIST}?stage=production")) == []


def test_list_mine_shows_the_callers_requests(api, file, make_version, approvers, owner):
    own = file(make_version(), "staging")
    theirs = file(make_version(), "staging", actor=approvers["risk_officer"])
    assert _ids(api(owner).get(f"{LIST}?mine=true")) == [own.pk]
    assert _ids(api(approvers["risk_officer"]).get(f"{LIST}?mine=true")) == [theirs.pk]


def test_list_awaiting_me_shows_what_the_caller_may_decide(
    api, file, decide, make_version, approvers, risk_officer
):
    for_validators = file(make_version(), "staging")
    by_validator = file(make_version(), "staging", actor=approvers["validator"])
    assert _ids(api(approvers["validator"]).get(f"{LIST}?awaiting_me=true")) == [for_validators.pk]
    assert set(_ids(api(approvers["validator_2"]).get(f"{LIST}?awaiting_me=true"))) == {
        for_validators.pk,
        by_validator.pk,
    }
    assert _ids(api(risk_officer).get(f"{LIST}?awaiting_me=true")) == []


def test_list_hides_requests_about_invisible_models(api, file, version, outsider):
    file(version, "staging")
    assert _ids(api(outsider).get(LIST)) == []


def test_detail_shows_policy_progress_slot_by_slot(api, file, decide, promote, version, approvers):
    promote(version, "staging")
    request = file(version, "production")
    decide(request, approvers["risk_officer"])
    body = api(approvers["validator"]).get(f"{LIST}/{request.pk}").json()
    slots = body["progress"]["slots"]
    assert [(s["role"], s["index"], s["filled_by"]) for s in slots] == [
        ("model-validator", 1, None),
        ("model-validator", 2, None),
        ("risk-officer", 1, approvers["risk_officer"].username),
    ]
    assert slots[2]["filled_at"] is not None
    assert body["policy"]["required_approvals"] == {"model-validator": 2, "risk-officer": 1}
    assert body["decisions"][0]["comment"] == "Checked the evidence."


def test_detail_of_an_invisible_request_is_404(api, file, version, outsider):
    request = file(version, "staging")
    assert api(outsider).get(f"{LIST}/{request.pk}").status_code == 404


def test_stage_history_lists_every_applied_transition(api, owner, promote, version):
    first = promote(version, "staging")
    second = promote(version, "production")
    response = api(owner).get("/api/v1/models/credit-scoring/stage-history")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["version"], r["from_stage"], r["to_stage"], r["request"]) for r in rows] == [
        (1, "development", "staging", first.pk),
        (1, "staging", "production", second.pk),
    ]


def test_stage_history_of_an_invisible_model_is_404(api, outsider, credit_model):
    assert api(outsider).get("/api/v1/models/credit-scoring/stage-history").status_code == 404


def test_stages_as_of_answer_which_version_was_in_each_stage(api, owner, promote, make_version):
    first, second = make_version(), make_version()
    promote(first, "staging")
    promote(first, "production")
    promote(second, "staging")
    promote(second, "production")
    first_live = StageTransition.objects.get(version=first, to_stage="production").occurred_at
    second_live = StageTransition.objects.get(version=second, to_stage="production").occurred_at
    client = api(owner)

    def at(moment):
        url = f"/api/v1/models/credit-scoring/stages?as_of={quote(moment.isoformat())}"
        response = client.get(url)
        assert response.status_code == 200, response.json()
        return response.json()

    then = at(first_live)
    assert then["production"] == 1
    assert {v["version"]: v["stage"] for v in then["versions"]} == {
        1: "production",
        2: "development",
    }
    now = at(second_live + timedelta(microseconds=1))
    assert now["production"] == 2
    assert {v["version"]: v["stage"] for v in now["versions"]} == {1: "archived", 2: "production"}
    before = at(first.created_at - timedelta(seconds=1))
    assert before == {**before, "production": None, "versions": []}


def test_stages_without_as_of_answer_for_now(api, owner, promote, version):
    promote(version, "staging")
    body = api(owner).get("/api/v1/models/credit-scoring/stages").json()
    assert body["versions"] == [
        {"version": 1, "stage": "staging", "since": body["versions"][0]["since"]}
    ]
    assert body["as_of"] <= timezone.now().isoformat().replace("+00:00", "Z")


def test_stages_as_of_an_invalid_time_is_400(api, owner, version):
    response = api(owner).get("/api/v1/models/credit-scoring/stages?as_of=yesterday")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "as_of"


def test_approval_history_lists_requests_and_decisions_for_model_cards(promote, version, approvers):
    from approvals.selectors import approval_history

    promote(version, "staging")
    history = approval_history(version)
    assert [(h["to_stage"], h["status"]) for h in history] == [("staging", "approved")]
    assert history[0]["decisions"][0]["by"] == approvers["validator"].username


def test_documents_name_the_system_account_once_and_people_by_name(owner, version):
    from approvals.selectors import SYSTEM_NAME, person_name

    system = services.system_account()
    assert person_name(system) == SYSTEM_NAME == "modelgov (system)"
    owner.first_name, owner.last_name = "Olga", "Owner"
    assert person_name(owner) == f"Olga Owner ({owner.username})"

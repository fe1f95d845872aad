"""E-mails: to eligible approvers when a request is filed, to the requester when it is
decided; sent by tasks after commit, once."""

from approvals import notifications
from approvals.tasks import notify_request_decided, notify_request_filed


def test_filing_emails_the_eligible_approvers_after_commit(
    file, version, approvers, mailoutbox, django_capture_on_commit_callbacks, validator
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request = file(version, "staging")
    assert mailoutbox == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted(
        [approvers["validator"].email, approvers["validator_2"].email]
    )
    assert f"#{request.pk} awaits your decision" in mailoutbox[0].subject


def test_approvers_exclude_the_requester_and_the_unappointed(file, version, approvers, validator):
    request = file(version, "staging", actor=approvers["validator_2"])
    names = [u.username for u in notifications.eligible_approvers(request)]
    assert names == [approvers["validator"].username]


def test_decision_emails_the_requester(
    file, decide, version, approvers, owner, mailoutbox, django_capture_on_commit_callbacks
):
    request = file(version, "staging")
    with django_capture_on_commit_callbacks(execute=True):
        decide(request, approvers["validator"])
    assert [m.to for m in mailoutbox] == [[owner.email]]
    assert "approved" in mailoutbox[0].subject
    assert "Checked the evidence." in mailoutbox[0].body


def test_notification_tasks_are_idempotent(file, decide, version, approvers, mailoutbox):
    request = file(version, "staging")
    assert notify_request_filed.delay(request.pk).get() == 2
    assert notify_request_filed.delay(request.pk).get() == 0
    decide(request, approvers["validator"])
    assert notify_request_decided.delay(request.pk).get() == 1
    assert notify_request_decided.delay(request.pk).get() == 0
    assert len(mailoutbox) == 2

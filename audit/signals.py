"""Events Django's own auth app raises, recorded in the audit log: sign-in, sign-in failure,
sign-out, account changes and group membership (roles) — whichever door made them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save

from audit.selectors import role_names_forget
from audit.services import audit_record
from core import context

# Fields of a user whose change matters to governance (never the password hash itself).
USER_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser")


def _auth_context():
    ctx = context.current()
    return context.bound(**{**ctx, "channel": "auth"})


def on_login(sender, request, user, **kwargs):
    with _auth_context(), transaction.atomic():
        audit_record(actor=user, action="auth.login.succeeded", target=user)


def on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with _auth_context(), transaction.atomic():
        audit_record(actor=user, action="auth.logout", target=user)


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    with _auth_context(), transaction.atomic():
        audit_record(
            actor=None,
            action="auth.login.failed",
            object_type="auth.user",
            object_id="",
            object_repr=username,
            changes={"username": username},
        )


def _admin_actor():
    """Who is editing users and roles in the admin (set by the audited user admin); the
    auth app's own saves carry no actor, so this is the one place one comes from context."""
    return context.current().get("admin_user")


def on_user_saving(sender, instance, raw=False, **kwargs):
    """Remember the governed fields as they were, to record only real changes."""
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    before = sender.objects.filter(pk=instance.pk).values(*USER_FIELDS).first()
    instance._audit_before = before


def on_user_saved(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if raw or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a sign-in's last_login stamp is recorded as the sign-in itself
    before = getattr(instance, "_audit_before", None) or {}
    changes = {
        f: [before.get(f), getattr(instance, f)]
        for f in USER_FIELDS
        if created or before.get(f) != getattr(instance, f)
    }
    if not changes and not created:
        return  # saved without a governed change (a password change is recorded as such)
    with transaction.atomic():
        audit_record(
            actor=_admin_actor(),
            action="auth.user.created" if created else "auth.user.updated",
            target=instance,
            changes=changes,
        )


def on_groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        role_names_forget(instance)
    User = get_user_model()
    if reverse:  # group.user_set changed: one event per user
        users = User.objects.filter(pk__in=pk_set or [])
        groups = [instance]
    else:
        users = [instance]
        groups = list(model.objects.filter(pk__in=pk_set or []))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    with transaction.atomic():
        for user in users:
            audit_record(
                actor=_admin_actor(),
                action=f"auth.membership.{verb}",
                target=user,
                changes={"groups": sorted(g.name for g in groups)},
            )


def connect() -> None:
    User = get_user_model()
    user_logged_in.connect(on_login, dispatch_uid="audit.login")
    user_logged_out.connect(on_logout, dispatch_uid="audit.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    pre_save.connect(on_user_saving, sender=User, dispatch_uid="audit.user_saving")
    post_save.connect(on_user_saved, sender=User, dispatch_uid="audit.user_saved")
    m2m_changed.connect(on_groups_changed, sender=User.groups.through, dispatch_uid="audit.groups")

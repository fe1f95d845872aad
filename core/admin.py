"""Admin building blocks shared by the apps: admins whose writes are service calls, the one
mapping of a service's refusal to form errors and admin messages, archive actions, read-only
admins, and panels that apps add to another app's admin pages."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError

from core.errors import Conflict

# What a service refuses with (400, 403 and 409 through the API). On an admin form, a refusal
# of what was sent is shown on the form; a refusal of who sent it (PermissionDenied) is the
# admin's 403, as for any page the user may not use.
REFUSALS = (ValidationError, PermissionDenied, Conflict)
FORM_REFUSALS = (ValidationError, Conflict)


def refusal_errors(exc: Exception) -> list[tuple[str | None, str]]:
    """A service's refusal as (field or None, message) pairs: the one mapping of domain
    errors for the admin, behind both form errors and admin messages."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [
            (None if name == NON_FIELD_ERRORS else name, "; ".join(error.messages))
            for name, error in ((n, ValidationError(e)) for n, e in exc.error_dict.items())
        ]
    if isinstance(exc, ValidationError) and hasattr(exc, "error_list"):
        return [(getattr(exc, "field", None), "; ".join(exc.messages))]
    return [(getattr(exc, "field", None), str(exc))]


def refusal_to_form(form: forms.BaseForm, exc: Exception) -> None:
    """Show a refusal on the form: on the field it names when the form has that field, else
    above the form, naming the field."""
    for name, message in refusal_errors(exc):
        if name is not None and name in form.fields:
            form.add_error(name, message)
        else:
            form.add_error(None, f"{name}: {message}" if name else message)


def refusal_to_message(request, exc: Exception, subject: Any = None) -> None:
    """Show a refusal as an admin message (e.g. of an action), about `subject` if given."""
    text = "; ".join(
        f"{name}: {message}" if name else message for name, message in refusal_errors(exc)
    )
    messages.warning(request, f"{subject}: {text}" if subject is not None else text)


class _Refused(Exception):
    """A refusal from the service called in an admin's save step (see ServiceAdmin)."""

    def __init__(self, refusal: Exception):
        super().__init__(str(refusal))
        self.refusal = refusal


class ServiceForm(forms.ModelForm):
    """A ModelForm whose save is a service call.

    Validating it writes nothing: the form's fields and the model's validators run as for any
    ModelForm. `call_service(actor)` is the write; ServiceAdmin calls it in the admin's save
    step. When the service refuses, the admin shows the form again from the same input with
    the refusal as its errors (`refusal` is set on that pass).
    """

    request: Any = None  # set by ServiceAdmin.get_form
    refusal: Exception | None = None  # set by ServiceAdmin.get_form on the re-rendered pass

    def clean(self):
        cleaned_data = super().clean()
        if self.refusal is not None:
            refusal_to_form(self, self.refusal)
        return cleaned_data

    def call_service(self, actor: Any) -> Any:
        raise NotImplementedError

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.changed_data}


class ServiceAdmin(admin.ModelAdmin):
    """Add and change go through `form.call_service`; nothing is deleted.

    The write happens in the admin's save step (`save_form`), inside the transaction Django's
    admin opens for the add or change view. A refusal leaves that transaction by an
    exception, so nothing of the attempt is kept. A refusal of what was sent (ValidationError,
    Conflict) is then answered by showing the same POST again with the refusal handed to the
    form, which shows it as errors next to the user's input (Django re-renders an invalid
    bound form as usual); a refusal of who sent it (PermissionDenied) is the admin's 403.
    """

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        return type(form.__name__, (form,), {"request": request, "refusal": refusal})

    def save_form(self, request, form, change):
        try:
            return form.call_service(request.user)
        except FORM_REFUSALS as exc:
            raise _Refused(exc) from exc

    def save_model(self, request, obj, form, change):
        pass  # saved by the service in save_form

    def save_related(self, request, form, formsets, change):
        pass

    def add_view(self, request, form_url="", extra_context=None):
        return self._refusable(super().add_view, request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self._refusable(super().change_view, request, object_id, form_url, extra_context)

    def _refusable(self, view, request, *args):
        try:
            return view(request, *args)
        except _Refused as refused:
            request._service_refusal = refused.refusal
            return view(request, *args)

    def has_delete_permission(self, request, obj=None):
        return False  # nothing is hard-deleted; use the archive action


def archive_action(service: Callable[..., Any], label: str, arg: str):
    """A change-list action archiving each selected object through `service(actor=, arg=)`;
    each refusal becomes a message naming the object. Offered to those the model admin's
    `has_archive_permission(request)` admits (who may archive something of its kind)."""

    @admin.action(description=label, permissions=["archive"])
    def action(modeladmin, request, queryset):
        done = 0
        for obj in queryset:
            try:
                service(actor=request.user, **{arg: obj})
                done += 1
            except REFUSALS as exc:
                refusal_to_message(request, exc, obj)
        if done:
            messages.success(request, f"Archived {done}.")

    action.__name__ = f"archive_{arg}"
    return action


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record kept by a service (or append-only): listed and shown, never added, changed
    or deleted in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- panels: what apps above a model's own app add to its admin pages ----------------------------

# Who is looking at the page being rendered: panels leave out what the viewer may not see.
_viewer: contextvars.ContextVar = contextvars.ContextVar("admin_panel_viewer", default=None)


@dataclass(frozen=True)
class Panel:
    """A read-only section that an app adds to the admin page of a model it does not own.

    `render(obj, viewer)` returns the section's text or safe HTML for a saved object and the
    user looking at the page. On pages laid out in fieldsets the panel gets one of its own,
    titled `title`; elsewhere it follows the other fields. `css` lists stylesheets the section
    needs (no inline styles: the admin runs under the Content-Security-Policy), `urls(admin)`
    extra admin URL patterns (prefixed to the model admin's own), `actions` change-list actions
    (plain admin action functions, `action(modeladmin, request, queryset)`).
    """

    name: str
    label: str
    render: Callable[[Any, Any], Any]
    title: str | None = None
    css: Sequence[str] = ()
    urls: Callable[[admin.ModelAdmin], list] | None = None
    actions: Sequence[Callable] = field(default_factory=tuple)

    @cached_property
    def field(self) -> Callable[[Any], Any]:
        """The read-only field showing the panel (one function per panel: the admin finds
        a callable field in its fieldsets by identity)."""

        def show(obj):
            if obj is None or obj.pk is None:
                return "-"
            return self.render(obj, _viewer.get())

        show.__name__ = self.name  # the page's CSS class: field-<name>
        show.short_description = self.label
        return show


class Panels:
    """The panels of one admin page, in the order the apps registered them."""

    def __init__(self) -> None:
        self._panels: dict[str, Panel] = {}

    def register(self, panel: Panel) -> None:
        """Add a panel (registering a name again replaces it, in its first place)."""
        self._panels[panel.name] = panel

    def __iter__(self) -> Iterator[Panel]:
        return iter(list(self._panels.values()))


class PanelAdmin(admin.ModelAdmin):
    """A model admin that shows the `panels` other apps register on it (read-only fields,
    stylesheets, URLs and change-list actions), instead of being re-registered by them."""

    panels: Panels | tuple = ()  # each subclass that takes panels declares its own Panels()

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(p.field for p in self.panels)]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if not self.fieldsets:
            return fieldsets  # laid out from get_fields(), which lists the read-only fields
        return fieldsets + [(p.title, {"fields": [p.field]}) for p in self.panels]

    @property
    def media(self):
        media = super().media
        css = [sheet for p in self.panels for sheet in p.css]
        return media + forms.Media(css={"all": css}) if css else media

    def get_urls(self):
        extra = [pattern for p in self.panels if p.urls is not None for pattern in p.urls(self)]
        return extra + super().get_urls()

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions  # actions are off on this page
        for panel in self.panels:
            for action in panel.actions:
                func, name, description = self.get_action(action)
                actions[name] = (func, name, description)
        return actions

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The admin renders read-only fields lazily, after the view returned: render the
        # page here, while the panels know who is looking.
        token = _viewer.set(request.user)
        try:
            response = super().render_change_form(request, context, add, change, form_url, obj)
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _viewer.reset(token)

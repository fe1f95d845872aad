"""Admin building blocks shared by the apps."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR


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

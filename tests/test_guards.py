"""Guards on the layers: the doors (views, API, admin, serializers, forms, signals, app
configs, permission modules) never write a model themselves — a service does, with its
actor and its audit event — and every public service records one audit event per object it
changes."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from rest_framework import mixins

ROOT = Path(__file__).resolve().parent.parent
APPS = [
    "core",
    "audit",
    "registry",
    "lineage",
    "approvals",
    "oversight",
    "modelcards",
    "mlflow_api",
    "webhooks",
]

# ---------------------------------------------------------------------------------------
# (a) Doors do not write.

DOOR_PATTERNS = (
    "views.py",
    "views/*.py",
    "api/*.py",
    "admin.py",
    "admin_*.py",
    "admin/*.py",
    "serializers*.py",
    "forms*.py",
    "forms/*.py",
    "signals*.py",
    "apps.py",
    "permissions.py",
)

# Files that still write, each with why; a fixed one must leave this list (see the test).
KNOWN = {
    "audit/admin.py": "the user and group admins are django.contrib.auth's own, which save "
    "accounts and roles themselves (the auth signals record them); they belong in a service",
    "registry/permissions.py": "grants and revokes object permissions (guardian) itself; "
    "they belong in the registry's services",
    "approvals/permissions.py": "appoints approvers and the system user itself; they belong "
    "in the approvals services",
}

# Called on anything, these persist it: a model, a ModelForm, a formset, a serializer.
INSTANCE_WRITES = {"save", "delete"}
# Called on a manager or a queryset, these write rows.
QUERY_WRITES = {
    "create",
    "bulk_create",
    "bulk_update",
    "update",
    "delete",
    "get_or_create",
    "update_or_create",
}
# Managers, and the queryset methods that return a queryset of the same rows.
MANAGERS = {"objects", "_default_manager", "_base_manager"}
QUERYSET_METHODS = {
    "all",
    "filter",
    "exclude",
    "select_related",
    "prefetch_related",
    "order_by",
    "select_for_update",
    "only",
    "defer",
    "annotate",
    "using",
    "distinct",
}
QUERYSET_FUNCTIONS = {"get_objects_for_user"}
# Admin and DRF hooks whose inherited version writes: `super().save_model(...)` saves.
DELEGATED_WRITES = {
    "save_model",
    "delete_model",
    "delete_queryset",
    "save_related",
    "save_formset",
    "perform_create",
    "perform_update",
    "perform_destroy",
}
# Functions that write rows however they are called.
WRITE_FUNCTIONS = {"assign_perm", "remove_perm"}


def _is_queryset(node: ast.AST, names: set[str]) -> bool:
    """Whether `node` is (statically) a manager or queryset: `X.objects…`, a queryset
    method on one, `get_queryset(…)`, or a name bound to one."""
    if isinstance(node, ast.Attribute):
        return node.attr in MANAGERS
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Subscript):
        return _is_queryset(node.value, names)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in QUERYSET_FUNCTIONS
        if isinstance(func, ast.Attribute):
            if func.attr == "get_queryset":
                return True
            return func.attr in QUERYSET_METHODS and _is_queryset(func.value, names)
    return False


def _queryset_names(function: ast.AST) -> set[str]:
    """Names that hold querysets in a function: a `queryset` parameter (admin actions and
    hooks) and names assigned a queryset expression."""
    names = {"queryset"}
    changed = True
    while changed:  # `a = X.objects.all(); b = a.filter(...)`
        changed = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and _is_queryset(node.value, names):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id not in names:
                        names.add(target.id)
                        changed = True
    return names


def _is_super_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def writes_in(source: str, filename: str = "<source>") -> list[str]:
    """Each model write in `source`, as "line: call"."""
    tree = ast.parse(source, filename=filename)
    scopes: dict[ast.AST, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = _queryset_names(node)
            for inner in ast.walk(node):
                scopes.setdefault(inner, names)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, write = node.func, False
        if isinstance(func, ast.Name):
            write = func.id in WRITE_FUNCTIONS
        elif isinstance(func, ast.Attribute):
            names = scopes.get(node, {"queryset"})
            write = (
                func.attr in INSTANCE_WRITES
                or (func.attr in QUERY_WRITES and _is_queryset(func.value, names))
                or (func.attr in DELEGATED_WRITES and _is_super_call(func.value))
                or func.attr in WRITE_FUNCTIONS
            )
        if write:
            found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def door_files() -> list[Path]:
    files = set()
    for app in APPS:
        for pattern in DOOR_PATTERNS:
            files.update(p for p in (ROOT / app).glob(pattern) if p.is_file())
    return sorted(files)


def _relative(path: Path | str) -> str:
    return str(Path(path).resolve().relative_to(ROOT))


def _admin_writes() -> Iterator[tuple[str, str]]:
    """(file, what) for each registered ModelAdmin that lets Django save or delete: it
    permits adding, changing or deleting and keeps the inherited hook that writes."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(username="root", is_superuser=True, is_active=True)
    hooks = {
        "add": ("save_model",),
        "change": ("save_model",),
        "delete": ("delete_model", "delete_queryset"),
    }
    for model, model_admin in admin.site._registry.items():
        cls = type(model_admin)
        for permission, names in hooks.items():
            if not getattr(model_admin, f"has_{permission}_permission")(request):
                continue
            inherited = [n for n in names if getattr(cls, n) is getattr(ModelAdmin, n)]
            if inherited:
                yield (
                    _relative(inspect.getfile(cls)),
                    f"{cls.__name__} ({model._meta.label}) may {permission} and inherits "
                    f"{', '.join(inherited)}",
                )


def _view_writes() -> Iterator[tuple[str, str]]:
    """(file, what) for each API view whose DRF create/update/destroy mixin saves through
    the serializer (perform_* not overridden)."""
    hooks = {
        mixins.CreateModelMixin: ("create", "perform_create"),
        mixins.UpdateModelMixin: ("update", "perform_update"),
        mixins.DestroyModelMixin: ("destroy", "perform_destroy"),
    }
    for path in door_files():
        if not (path.name == "views.py" or path.parent.name in ("api", "views")):
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for mixin, (action, hook) in hooks.items():
                if not issubclass(cls, mixin) or getattr(cls, hook) is not getattr(mixin, hook):
                    continue
                # The inherited hook runs when the mixin's action does: inherited, or called
                # by an override through super().
                if getattr(cls, action) is getattr(mixin, action) or _calls_super(
                    getattr(cls, action), action
                ):
                    yield _relative(path), f"{cls.__name__} inherits {hook}"


def _calls_super(function, name: str) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and _is_super_call(node.func.value)
        for node in ast.walk(tree)
    )


def door_writes() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in door_files():
        calls = writes_in(path.read_text(), str(path))
        if calls:
            found.setdefault(_relative(path), []).extend(calls)
    for path, what in (*_admin_writes(), *_view_writes()):
        found.setdefault(path, []).append(what)
    return found


@pytest.mark.django_db
def test_no_door_writes_a_model():
    unexpected = {path: calls for path, calls in door_writes().items() if path not in KNOWN}
    assert unexpected == {}, (
        "a view, admin, serializer, form, signal, app config or permission module writes; "
        f"move the write into a service: {unexpected}"
    )


@pytest.mark.django_db
def test_every_known_writer_still_writes():
    fixed = sorted(set(KNOWN) - set(door_writes()))
    assert fixed == [], f"these no longer write: remove them from KNOWN: {fixed}"


def test_the_scan_covers_every_app_door():
    scanned = {_relative(p) for p in door_files()}
    for expected in ("registry/admin.py", "audit/signals.py", "webhooks/api/views.py"):
        assert expected in scanned
    assert any(p.startswith("oversight/admin/") for p in scanned)


@pytest.mark.parametrize(
    "source",
    [
        "def f(obj):\n    obj.save()\n",
        "def f(obj):\n    obj.delete()\n",
        "def f(pk):\n    Model.objects.filter(pk=pk).update(name='x')\n",
        "def f():\n    Model.objects.create(name='x')\n",
        "def f():\n    Model._default_manager.bulk_create([])\n",
        "def f(request):\n    qs = Model.objects.all()\n    rows = qs.filter(a=1)\n"
        "    rows.delete()\n",
        "def action(modeladmin, request, queryset):\n    queryset.update(archived=True)\n",
        "class A:\n    def save_model(self, request, obj, form, change):\n"
        "        super().save_model(request, obj, form, change)\n",
        "def f(user, model):\n    assign_perm('change', user, model)\n",
        "def f(self):\n    get_objects_for_user(self.user, 'x').delete()\n",
    ],
)
def test_the_rule_sees_a_write(source):
    assert writes_in(source)


@pytest.mark.parametrize(
    "source",
    [
        "def f(data):\n    data.update({'a': 1})\n",  # a dict
        "def f(context):\n    context.update(channel='x')\n",
        "def f(seen):\n    seen.add(1)\n",
        "def f():\n    text = 'Model.objects.create(x) obj.save()'\n",  # words, not calls
        "def f(x):\n    services.dataset_create(actor=x, name='n')\n",
        "def f(serializer):\n    return serializer.data\n",
        "def f(self, request):\n    return super().get_queryset(request).filter(a=1)\n",
    ],
)
def test_the_rule_leaves_alone_what_does_not_write(source):
    assert writes_in(source) == []

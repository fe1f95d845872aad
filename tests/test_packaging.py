"""What an installed modelgov holds: the distribution built from pyproject.toml carries every
app with its templates and static files, and runs away from the checkout, keeping its data
where VAR_DIR says."""

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
NOT_SHIPPED = {"tests", "bench", "scripts"}  # packages of the checkout, not of modelgov


def _shipped() -> set[str]:
    return set(find_packages(where=str(ROOT), include=SETUPTOOLS["packages"]["find"]["include"]))


def _tops() -> set[str]:
    return {d.name for d in ROOT.iterdir() if (d / "__init__.py").is_file()} - NOT_SHIPPED


def test_every_package_of_the_tree_is_shipped_and_nothing_else():
    shipped = _shipped()
    assert {name.split(".")[0] for name in shipped} == _tops()
    for top in _tops():
        for module in (ROOT / top).rglob("*.py"):
            package = ".".join(module.parent.relative_to(ROOT).parts)
            assert package in shipped, f"{module.relative_to(ROOT)} is in no shipped package"


def test_every_file_an_app_reads_besides_code_is_shipped():
    patterns = SETUPTOOLS["package-data"]["*"]
    checked = 0
    for top in _tops():
        for path in (ROOT / top).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
                continue
            package = next(p for p in path.parents if (p / "__init__.py").is_file())
            covered = {found for pattern in patterns for found in package.glob(pattern)}
            assert path in covered, f"{path.relative_to(ROOT)} is not in package-data"
            checked += 1
    assert checked >= 10  # the templates and static files: the walk found them


def test_the_template_directories_are_inside_shipped_packages(settings):
    for backend in settings.TEMPLATES:
        for directory in backend["DIRS"]:
            assert Path(directory).resolve().relative_to(ROOT).parts[0] in _tops(), directory


def test_a_built_wheel_runs_away_from_the_checkout(tmp_path):
    """Build the wheel from the tracked files (no network: this environment's setuptools),
    install it into a folder of its own and run it from elsewhere: its templates, static
    files and migrations are found in the installed package, its data in VAR_DIR."""
    source, wheels, target, data = (tmp_path / name for name in ("src", "dist", "site", "var"))
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        path = ROOT / os.fsdecode(name)
        if path.is_file():  # a file deleted in the working tree is not built
            (source / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            (source / path.relative_to(ROOT)).write_bytes(path.read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("modelgov-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert "modelcards/templates/modelcards/model_card.html" in shipped
    install = [*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)

    script = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template.loader import get_template
from django.apps import apps
import core
print(core.__file__)
print(settings.DATABASES["default"]["NAME"])
for name in ("admin/base_site.html", "modelcards/model_card.html"):
    print(get_template(name).origin.name)
print(finders.find("core/favicon.svg"))
call_command("migrate", verbosity=0)
call_command("check")
print(json.dumps({app.name: app.path for app in apps.get_app_configs()}))
"""
    env = {
        key: value
        for key, value in os.environ.items()
        # the key comes from VAR_DIR/.env; the rest from VAR_DIR's defaults
        if key
        not in ("DATABASE_URL", "STATIC_ROOT", "MEDIA_ROOT", "ENV_FILE", "PYTHONPATH", "SECRET_KEY")
    }
    data.mkdir()
    (data / ".env").write_text("SECRET_KEY=" + "s" * 50 + "\n")  # as make setup writes it
    env.update(
        {
            "PYTHONPATH": str(target),
            "VAR_DIR": str(data),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
        }
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert Path(lines[0]).is_relative_to(target), lines[0]  # not the checkout's core
    assert lines[1] == str(data / "modelgov.sqlite3")
    assert (data / "modelgov.sqlite3").stat().st_size > 0
    for found in lines[2:5]:
        assert Path(found).is_relative_to(target), found
    assert "System check identified no issues" in run.stdout
    # every app of modelgov from the wheel: none from the checkout, which this environment's
    # editable install would otherwise supply for a package the wheel lacks
    paths = json.loads(lines[-1])
    ours = {name: path for name, path in paths.items() if name.split(".")[0] in _tops()}
    assert set(ours) == _tops() - {"config"}  # settings and wiring, not an app
    for name, path in ours.items():
        assert Path(path).is_relative_to(target), (name, path)


def _settings_run(env_overrides: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    ours = ("DATABASE_URL", "STATIC_ROOT", "MEDIA_ROOT", "VAR_DIR", "DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update({"SECRET_KEY": "s" * 50, "DJANGO_SETTINGS_MODULE": "config.settings"})
    env.update(env_overrides)
    script = "import django; django.setup(); from django.conf import settings; print('ok')"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_a_relative_var_dir_is_refused_in_one_line(tmp_path):
    """Each process would find its data relative to where it started."""
    run = _settings_run({"VAR_DIR": "data"}, ROOT)
    assert run.returncode != 0
    assert "VAR_DIR must be an absolute path, not 'data'." in run.stderr
    assert not (ROOT / "data").exists()


def test_var_dir_is_not_created_when_the_database_is_named_elsewhere(tmp_path):
    """Installed with DATABASE_URL, STATIC_ROOT and MEDIA_ROOT set: nothing is written beside
    the code (nor in VAR_DIR)."""
    unused = tmp_path / "unused"
    elsewhere = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    run = _settings_run({"VAR_DIR": str(unused), **elsewhere}, ROOT)
    assert run.returncode == 0, run.stderr
    assert not unused.exists()
    run = _settings_run({"VAR_DIR": str(unused)}, ROOT)  # the embedded default needs it
    assert run.returncode == 0, run.stderr
    assert unused.is_dir()

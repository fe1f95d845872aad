"""Settings for the test suite: the production settings with a throwaway key and fast hashing."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-any-deployment")
# The files the suite writes (model cards) go to a directory of its own, never to the
# instance's var/media beside it; set in the environment, so that the processes the suite
# starts (workers, servers) write there too, and removed when the suite ends.
if not os.environ.get("MEDIA_ROOT"):
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="modelgov-test-media-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ROOT"], ignore_errors=True)
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ENV_FILE", "")  # the suite never reads var/.env

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Each test starts with no requests counted against the rate limits (tests/conftest.py empties
# the cache): the suite's own memory, never a cache CACHE_URL names for something else.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

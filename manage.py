#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

A command that fails says so in one line on stderr and exits non-zero (`--traceback` shows the
whole story), so `TOKEN=$(manage.py issue_token …)` in a script fails loudly, not emptily.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    if "--traceback" in sys.argv:
        execute_from_command_line(sys.argv)
        return
    try:
        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place every command's failure is said
        message = " ".join(str(exc).split()) or exc.__class__.__name__
        sys.stderr.write(f"error: {message} ({exc.__class__.__name__})\n")
        sys.exit(1)


if __name__ == "__main__":
    main()

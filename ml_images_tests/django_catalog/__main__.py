"""``python -m ml_images_tests.django_catalog <django-admin command>``: Django's own commands on the test app."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ml_images_tests.django_catalog.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([f"{sys.executable} -m ml_images_tests.django_catalog", *sys.argv[1:]])


if __name__ == "__main__":
    main()

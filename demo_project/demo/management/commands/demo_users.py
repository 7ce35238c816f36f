"""``manage.py demo_users``: the demo's staff login for the dashboard (and a non-staff one).

Idempotent: it (re)sets the passwords every time. DEMO_STAFF_PASSWORD overrides
the demo password.
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

DEFAULT_PASSWORD = "errwire-demo"  # noqa: S105 (a demo's printed login, not a secret)


class Command(BaseCommand):
    help = "Create the demo's staff user (and a non-staff visitor) and print the login."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_STAFF_PASSWORD", DEFAULT_PASSWORD)
        for name, staff in (("staff", True), ("visitor", False)):
            user, _ = User.objects.get_or_create(username=name)
            user.is_staff = staff
            user.is_active = True
            user.set_password(password)
            user.save()
        self.stdout.write(f"dashboard login: staff / {password} (non-staff: visitor / {password})")

from __future__ import annotations

from datetime import datetime

from django.db import models


class Order(models.Model):
    # Typed by hand: the project type-checks with django-stubs but without its mypy plugin.
    reference: models.CharField[str, str] = models.CharField(max_length=32, unique=True)
    quantity: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.reference} x{self.quantity}"

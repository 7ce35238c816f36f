"""errwire for Django.

Add ``"errwire.integrations.django"`` to ``INSTALLED_APPS`` (Django picks
``apps.ErrwireConfig`` by itself: it is the module's only, default, AppConfig)
and ``"errwire.integrations.django.middleware.ErrwireMiddleware"`` to
``MIDDLEWARE``; configure with one ``ERRWIRE = {...}`` dict. Importing this
package does nothing else: all wiring happens in ``AppConfig.ready()``.
"""

from __future__ import annotations

__all__: list[str] = []

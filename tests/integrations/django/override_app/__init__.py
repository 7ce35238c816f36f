"""An app listed before errwire's in INSTALLED_APPS: its ``errwire/dashboard.html``
extends errwire's page, as a project would, to test the override."""

"""Test utilities: a fault-injecting Sentry receiver and a real Bugsink server."""

"""errwire's benchmarks: side by side with the language floor, sentry-sdk and OpenTelemetry
(``python -m benchmarks``; see ``__main__`` and ``_registry``)."""

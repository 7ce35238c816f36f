"""errwire's benchmarks: side by side with the language floor and with sentry-sdk."""

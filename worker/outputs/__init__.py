"""What leaves the worker besides Kinde writes: the app's webhooks and the Postgres table feed."""

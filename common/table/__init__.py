"""The Postgres entitlements table: everything psycopg, its schema, rows and outbox."""

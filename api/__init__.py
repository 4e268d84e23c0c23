"""The read API (`rolesync api`): entitlements snapshots, customers and their timelines, from Redis only."""

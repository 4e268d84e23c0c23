"""plans.toml: the plan → roles mapping, limits, the mapping the fleet runs, payment standing."""

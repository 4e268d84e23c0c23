-- The entitlements table: one row per (org, user) target that holds something (common/table/table_rows.py).
-- Idempotent: `rolesync db migrate` may run it again.
CREATE TABLE IF NOT EXISTS rolesync_entitlements (
    org_code     text        NOT NULL,
    user_id      text        NOT NULL,
    customer_ids text[]      NOT NULL DEFAULT '{}',
    plans        jsonb       NOT NULL DEFAULT '[]',
    features     jsonb       NOT NULL DEFAULT '[]',
    roles        text[]      NOT NULL DEFAULT '{}',
    standing     jsonb       NOT NULL DEFAULT '{}',
    usage        jsonb       NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL,
    generation   bigint      NOT NULL,
    PRIMARY KEY (org_code, user_id)
);
CREATE INDEX IF NOT EXISTS rolesync_entitlements_user ON rolesync_entitlements (user_id);
CREATE INDEX IF NOT EXISTS rolesync_entitlements_customers ON rolesync_entitlements USING gin (customer_ids);

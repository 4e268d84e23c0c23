-- Hand grants (common/entitlements/manual_grants.py) covering a target: [{granted_by: {grant, reason}, roles, by, until}].
-- Idempotent: `rolesync db migrate` may run it again.
ALTER TABLE rolesync_entitlements ADD COLUMN IF NOT EXISTS hand_grants jsonb NOT NULL DEFAULT '[]';

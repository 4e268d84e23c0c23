/**
 * rolesync's plan-selection guard: before Kinde applies a plan change, ask rolesync whether the
 * customer fits the requested plan, and refuse the change with rolesync's message and reasons if not.
 *
 * Kinde environment variables (Settings > Env variables):
 * - ROLESYNC_GUARD_URL        full URL of `POST /v1/plan-selection` on `rolesync api` (required)
 * - ROLESYNC_WORKFLOW_SECRET  the shared secret rolesync expects; mark it sensitive (required)
 * - ROLESYNC_GUARD_ON_ERROR   "allow" (default) or "deny": what to do when rolesync cannot answer
 * - ROLESYNC_GUARD_TIMEOUT_MS how long to wait for rolesync (default 5000)
 * - ROLESYNC_INSECURE_LOCAL   "1" lets an http URL on loopback through: tests against a local stub only
 *
 * ROLESYNC_GUARD_URL must be https: the workflow secret travels with every call. An http URL is refused
 * before anything is sent (the failure policy below applies), unless ROLESYNC_INSECURE_LOCAL=1 and the
 * host is loopback, which from Kinde's runtime reaches nothing of yours.
 *
 * Failure policy: a guard that cannot reach rolesync (down, slow, 401, 5xx, missing settings, an
 * answer that is not a decision) lets the change through and logs why, like rolesync's own
 * on_error=allow; ROLESYNC_GUARD_ON_ERROR=deny refuses it instead with a try-again message. The
 * handler catches every failure itself, and failurePolicy "continue" keeps an unexpected runtime
 * error from blocking a customer's plan change either.
 */
import type { onPlanSelection, WorkflowSettings } from "@kinde/infrastructure";
import { WorkflowTrigger, denyPlanSelection, fetch, getEnvironmentVariable } from "@kinde/infrastructure";

// The library's bindings type omits "kinde.plan", which denyPlanSelection needs (Kinde's docs list it).
type PlanSelectionSettings = WorkflowSettings & { bindings: NonNullable<WorkflowSettings["bindings"]> & { "kinde.plan": {} } };

export const workflowSettings: PlanSelectionSettings = {
  id: "rolesyncPlanSelectionGuard",
  name: "rolesync plan-selection guard",
  trigger: WorkflowTrigger.PlanSelection,
  failurePolicy: { action: "continue" },
  bindings: {
    "kinde.plan": {},
    "kinde.fetch": {},
    "kinde.env": {},
    url: {},
    console: {},
  },
};

type Decision = { allow: boolean; message: string; reasons: string[] };

type GuardConfig = { url: string; secret: string; denyOnError: boolean; timeoutMs: number; insecureLocal: boolean };

const DEFAULT_TIMEOUT_MS = 5000;
const SECRET_HEADER = "x-rolesync-workflow-secret";
const DEFAULT_DENIAL = "This plan change is not available for your account.";
const UNAVAILABLE = "We could not check this plan change just now. Please try again in a few minutes.";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export default async function planSelectionGuard(event: onPlanSelection): Promise<void> {
  const settings = readConfig();
  let decision: Decision;
  try {
    decision = await askRolesync(settings, event);
  } catch (error) {
    return onFailure(settings, error);
  }
  log("plan_selection_decided", { allow: decision.allow, reasons: decision.reasons.length });
  if (!decision.allow) {
    denyPlanSelection(decision.message || DEFAULT_DENIAL, decision.reasons);
  }
}

function readConfig(): GuardConfig {
  const timeout = Number(env("ROLESYNC_GUARD_TIMEOUT_MS"));
  return {
    url: env("ROLESYNC_GUARD_URL"),
    secret: env("ROLESYNC_WORKFLOW_SECRET"),
    denyOnError: env("ROLESYNC_GUARD_ON_ERROR").toLowerCase() === "deny",
    timeoutMs: timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS,
    insecureLocal: env("ROLESYNC_INSECURE_LOCAL") === "1",
  };
}

function env(name: string): string {
  return (getEnvironmentVariable(name)?.value ?? "").trim();
}

async function askRolesync(settings: GuardConfig, event: onPlanSelection): Promise<Decision> {
  if (!settings.url || !settings.secret) {
    throw new Error("ROLESYNC_GUARD_URL or ROLESYNC_WORKFLOW_SECRET is not set");
  }
  refuseUnsafeUrl(settings);
  const { billing, user, organization } = event.context;
  const body = {
    billing: { currentPlanCode: billing.currentPlanCode, requestedPlanCode: billing.requestedPlanCode },
    user: { id: user?.id },
    organization: { code: organization?.code },
  };
  const call = fetch(settings.url, {
    method: "POST",
    responseFormat: "json",
    headers: { "Content-Type": "application/json", [SECRET_HEADER]: settings.secret },
    // The library types the body as URLSearchParams; rolesync's endpoint takes the JSON text.
    body: JSON.stringify(body) as unknown as URLSearchParams,
  });
  const { data } = await withTimeout(call, settings.timeoutMs);
  return asDecision(data);
}

function refuseUnsafeUrl(settings: GuardConfig): void {
  let parsed: URL;
  try {
    parsed = new URL(settings.url);
  } catch {
    throw new Error("ROLESYNC_GUARD_URL is not a URL");
  }
  const localHttp = parsed.protocol === "http:" && settings.insecureLocal && LOOPBACK.has(parsed.hostname);
  if (parsed.protocol !== "https:" && !localHttp) {
    throw new Error("ROLESYNC_GUARD_URL must be https: the workflow secret is sent with every call");
  }
}

function asDecision(data: unknown): Decision {
  const answer = (data ?? {}) as Record<string, unknown>;
  if (typeof answer.allow !== "boolean") {
    // A 401 (bad secret), a 5xx or a proxy's page: no decision in it.
    throw new Error("rolesync did not answer with a decision");
  }
  const reasons = Array.isArray(answer.reasons) ? answer.reasons.filter((r) => typeof r === "string") : [];
  return { allow: answer.allow, message: typeof answer.message === "string" ? answer.message : "", reasons };
}

async function withTimeout<T>(call: Promise<T>, timeoutMs: number): Promise<T> {
  // Kinde's fetch has no timeout option; a hung endpoint must not hold the customer's change.
  if (typeof setTimeout !== "function") {
    return call;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`rolesync did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([call, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function onFailure(settings: GuardConfig, error: unknown): void {
  const why = error instanceof Error ? error.message : String(error);
  log("plan_selection_check_failed", { why, outcome: settings.denyOnError ? "denied" : "allowed" });
  if (settings.denyOnError) {
    denyPlanSelection(UNAVAILABLE, []);
  }
}

function log(event: string, fields: Record<string, unknown>): void {
  // Never log the secret or the request headers; Kinde shows these lines in the workflow's run log.
  console.log(JSON.stringify({ event, ...fields }));
}

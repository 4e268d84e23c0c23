// The plan-selection guard against a stub rolesync endpoint over real HTTP, inside a stub of Kinde's runtime.
//
// Run: node --import ./test/register.mjs --test test/planSelectionWorkflow.test.mjs  (WORKFLOW_MODULE names the module to load: the
// .ts file itself on a node that strips types, else the JavaScript the pytest wrapper made from it).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { install, runtime } from "@kinde/infrastructure";

const SECRET = "wf-secret-for-tests";
const modulePath =
  process.env.WORKFLOW_MODULE ?? new URL("../kindeSrc/environment/workflows/planSelectionWorkflow.ts", import.meta.url).pathname;
const { default: guard, workflowSettings } = await import(pathToFileURL(modulePath).href);

const seen = [];
let server;
let baseUrl;

// rolesync's contract: 401 on a bad secret; else refuse plan_small, allow the rest, and hang on plan_slow.
function answer(request, response) {
  let text = "";
  request.on("data", (chunk) => (text += chunk));
  request.on("end", () => {
    const body = JSON.parse(text);
    seen.push({ headers: request.headers, body });
    if (request.headers["x-rolesync-workflow-secret"] !== SECRET) {
      return reply(response, 401, { errors: [{ code: "UNAUTHORIZED", message: "bad workflow secret" }] });
    }
    if (request.url === "/broken") {
      return reply(response, 503, { errors: [{ code: "UNAVAILABLE", message: "down for maintenance" }] });
    }
    if (body.billing.requestedPlanCode === "plan_slow") {
      return; // never answers: the guard's own timeout must end the wait
    }
    if (body.billing.requestedPlanCode === "plan_small") {
      return reply(response, 200, {
        allow: false,
        message: "Your organization does not fit plan_small yet:",
        reasons: ["3 members hold seats; plan_small allows 1. Remove 2 members."],
      });
    }
    reply(response, 200, { allow: true, message: "", reasons: [] });
  });
}

function reply(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function event(requestedPlanCode) {
  return {
    request: { ip: "127.0.0.1", userAgent: "node-test" },
    context: {
      domains: { kindeDomain: "https://example.kinde.com" },
      workflow: { trigger: "user:plan_selection" },
      billing: { currentPlanCode: "plan_team", requestedPlanCode },
      user: { id: "kp_0123456789abcdef" },
      organization: { code: "org_0123456789ab" },
    },
  };
}

function useEnv(overrides = {}) {
  // The stub is http on loopback: allowed only with ROLESYNC_INSECURE_LOCAL=1 (the last test drops it).
  const env = {
    ROLESYNC_GUARD_URL: `${baseUrl}/v1/plan-selection`,
    ROLESYNC_WORKFLOW_SECRET: SECRET,
    ROLESYNC_INSECURE_LOCAL: "1",
    ...overrides,
  };
  install(workflowSettings.bindings, Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)));
}

before(async () => {
  server = createServer(answer);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  seen.length = 0;
});

describe("workflowSettings", () => {
  test("runs on plan selection with the bindings it uses, and continues when the workflow itself fails", () => {
    assert.equal(workflowSettings.trigger, "user:plan_selection");
    assert.deepEqual(workflowSettings.failurePolicy, { action: "continue" });
    for (const binding of ["kinde.plan", "kinde.fetch", "kinde.env", "url"]) {
      assert.ok(binding in workflowSettings.bindings, `binding ${binding} is declared`);
    }
  });
});

describe("the guard", () => {
  test("allow: the change goes through, and rolesync got the event's context with the secret", async () => {
    useEnv();
    await guard(event("plan_big"));
    assert.deepEqual(runtime.denials, []);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers["x-rolesync-workflow-secret"], SECRET);
    assert.equal(seen[0].headers["content-type"], "application/json");
    assert.deepEqual(seen[0].body, {
      billing: { currentPlanCode: "plan_team", requestedPlanCode: "plan_big" },
      user: { id: "kp_0123456789abcdef" },
      organization: { code: "org_0123456789ab" },
    });
  });

  test("deny: the change is refused with rolesync's message and reasons", async () => {
    useEnv();
    await guard(event("plan_small"));
    assert.deepEqual(runtime.denials, [
      {
        message: "Your organization does not fit plan_small yet:",
        reasons: ["3 members hold seats; plan_small allows 1. Remove 2 members."],
      },
    ]);
  });

  test("endpoint down: allowed by default, refused with a try-again message under ON_ERROR=deny", async () => {
    const closed = createServer();
    await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${closed.address().port}/v1/plan-selection`;
    await new Promise((resolve) => closed.close(resolve));
    useEnv({ ROLESYNC_GUARD_URL: deadUrl });
    await guard(event("plan_small"));
    assert.deepEqual(runtime.denials, []);
    useEnv({ ROLESYNC_GUARD_URL: deadUrl, ROLESYNC_GUARD_ON_ERROR: "deny" });
    await guard(event("plan_small"));
    assert.equal(runtime.denials.length, 1);
    assert.match(runtime.denials[0].message, /try again/);
  });

  test("bad secret (401): no decision, so the failure policy applies, never rolesync's error text", async () => {
    useEnv({ ROLESYNC_WORKFLOW_SECRET: "not-the-secret" });
    await guard(event("plan_small"));
    assert.deepEqual(runtime.denials, []);
    assert.equal(seen.length, 1);
    useEnv({ ROLESYNC_WORKFLOW_SECRET: "not-the-secret", ROLESYNC_GUARD_ON_ERROR: "deny" });
    await guard(event("plan_small"));
    assert.equal(runtime.denials.length, 1);
    assert.doesNotMatch(runtime.denials[0].message, /secret/);
  });

  test("5xx: the failure policy applies", async () => {
    useEnv({ ROLESYNC_GUARD_URL: `${baseUrl}/broken` });
    await guard(event("plan_small"));
    assert.deepEqual(runtime.denials, []);
  });

  test("slow endpoint: the guard stops waiting after ROLESYNC_GUARD_TIMEOUT_MS and applies the policy", async () => {
    useEnv({ ROLESYNC_GUARD_TIMEOUT_MS: "200", ROLESYNC_GUARD_ON_ERROR: "deny" });
    await guard(event("plan_slow"));
    assert.equal(runtime.denials.length, 1);
    assert.match(runtime.denials[0].message, /try again/);
  });

  test("an http URL is refused before the secret is sent: the failure policy applies", async () => {
    for (const overrides of [
      { ROLESYNC_INSECURE_LOCAL: undefined }, // the stub's own loopback URL, without the opt-in
      { ROLESYNC_GUARD_URL: "http://rolesync.example.com/v1/plan-selection" }, // opted in, but not loopback
      { ROLESYNC_GUARD_URL: "not a url" },
    ]) {
      useEnv({ ...overrides, ROLESYNC_GUARD_ON_ERROR: "deny" });
      await guard(event("plan_big"));
      assert.deepEqual(runtime.requests, [], JSON.stringify(overrides));
      assert.equal(runtime.denials.length, 1);
      assert.match(runtime.denials[0].message, /try again/);
    }
    assert.equal(seen.length, 0);
  });

  test("not configured: allowed without calling anything", async () => {
    useEnv({ ROLESYNC_GUARD_URL: undefined });
    await guard(event("plan_small"));
    assert.deepEqual(runtime.denials, []);
    assert.equal(seen.length, 0);
  });
});

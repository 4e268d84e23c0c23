// A stand-in for @kinde/infrastructure (0.9 on npm, 0.11 in its repo) inside Kinde's workflow runtime, for tests only.
//
// Like the library, each helper fails unless its binding is enabled, with the library's messages;
// `install(bindings, env)` enables the bindings a workflow's settings declare and sets its environment
// variables. `fetch` really calls the URL (node's fetch) and answers `{data}` as the library does;
// `denyPlanSelection` records the refusal where the test reads it (`runtime.denials`).

export const WorkflowTrigger = Object.freeze({
  PlanSelection: "user:plan_selection",
  PlanCancellationRequest: "user:plan_cancellation_request",
});

export const runtime = { bindings: {}, env: {}, denials: [], requests: [] };

export function install(bindings, env) {
  runtime.bindings = { ...bindings };
  runtime.env = { ...env };
  runtime.denials = [];
  runtime.requests = [];
}

function has(binding) {
  return Object.prototype.hasOwnProperty.call(runtime.bindings, binding);
}

export function getEnvironmentVariable(key) {
  if (!has("kinde.env")) {
    throw new Error("env binding not available, please add to workflow/page settings to enable");
  }
  return key in runtime.env ? { value: runtime.env[key], isSecret: key.includes("SECRET") } : undefined;
}

export function denyPlanSelection(message, reasons) {
  if (!has("kinde.plan")) {
    throw new Error("plan binding not available, please add to workflow/page settings to enable");
  }
  if (!message || typeof message !== "string") {
    throw new Error("Invalid message provided");
  }
  runtime.denials.push({ message, reasons });
}

export async function fetch(url, options) {
  if (!has("kinde.fetch") || !has("url")) {
    throw new Error("fetch binding not available");
  }
  runtime.requests.push({ url, method: options.method, headers: { ...options.headers } });
  const response = await globalThis.fetch(url, {
    method: options.method,
    headers: options.headers,
    body: options.body === undefined ? undefined : String(options.body),
  });
  const text = await response.text();
  if ((options.responseFormat ?? "json") === "text") {
    return { data: text };
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { data: json };
}

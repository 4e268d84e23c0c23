// The webhook handler Kinde's users write: Express + @kinde/webhooks, for the load comparison.
// decodeWebhook(token, domain) fetches `${domain}/.well-known/jwks.json` and verifies the RS256
// signature; it answers null for any token it rejects. Note: it builds a new remote key set on
// every call, so each webhook costs one JWKS fetch. That is the package's behaviour, kept as is.
"use strict";

const express = require("express");
const { decodeWebhook } = require("@kinde/webhooks");

const domain = process.env.KINDE_DOMAIN;
const port = Number(process.env.PORT || 3000);
if (!domain) {
  console.error("KINDE_DOMAIN is required (the tenant or sandbox URL serving /.well-known/jwks.json)");
  process.exit(2);
}

const app = express();

app.post("/webhooks/kinde", express.text({ type: "*/*", limit: "1mb" }), async (req, res) => {
  const token = typeof req.body === "string" ? req.body.trim() : "";
  if (!token) return res.status(400).json({ error: "empty body" });
  let event = null;
  try {
    event = await decodeWebhook(token, domain);
  } catch {
    event = null; // a token too broken even to decode after verification
  }
  if (!event) return res.status(401).json({ error: "invalid webhook" });
  return res.status(200).json({ received: event.type });
});

// A malformed body (bad encoding, too large) is the caller's fault: never a 500.
app.use((err, req, res, next) => res.status(err.status && err.status < 500 ? err.status : 400).json({ error: "bad request" }));

app.listen(port, "127.0.0.1", () => console.log(`express-kinde peer listening on 127.0.0.1:${port}`));

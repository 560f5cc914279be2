import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { admin } from "./support";

/** The operator's routes (/admin/*): who may call them and what they refuse. Dead letters recorded and replayed: enrich.test.ts, consumer.test.ts. */
describe("the dead-letter routes", () => {
  it("answers 404 for a dead letter that does not exist", async () => {
    const res = await admin("/dead-letters/nope/replay", { method: "POST" });
    expect(res.status).toBe(404);
  });
});

describe("the admin routes refuse", () => {
  it.each([
    ["no token", null],
    ["a wrong token", "guess"],
  ])("%s with 401 and no data", async (_name, token) => {
    const res = await admin("/dead-letters", {}, token);
    expect(res.status).toBe(401);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ error: "unauthorized", message: "Missing or invalid bearer token" });
  });

  it("everything with 403 when ADMIN_TOKEN is not set", async () => {
    const res = await app.request("/admin/dead-letters", { headers: { authorization: "Bearer anything" } }, { ...env, ADMIN_TOKEN: undefined });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "admin_disabled" });
  });

  it("a reconciliation window longer than a week, naming the field", async () => {
    const res = await admin("/reconcile", { method: "POST", body: JSON.stringify({ from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ issues: [{ path: "to" }] });
  });
});

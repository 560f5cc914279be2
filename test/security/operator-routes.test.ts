import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, admin, sandbox, workerWithEnv } from "../worker/support";
import { APP_MAX_BYTES } from "../../worker/routes/bitrix-app-context";
import { ADMIN_MAX_BYTES } from "../../worker/routes/admin";

/* What a stranger can learn or spend through /health, /admin and /bitrix/*. */

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

describe("/health tells strangers only ok or not", () => {
  it("names no setting to a stranger when a secret is missing: just 503 unavailable", async () => {
    const worker = workerWithEnv({ BITRIX_WEBHOOK_URL: undefined });
    const res = await worker(new Request("http://worker.test/health"));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "unavailable" });
  });

  it("lists problems and warnings only to the admin bearer token", async () => {
    const worker = workerWithEnv({ BITRIX_WEBHOOK_URL: undefined });
    const res = await worker(new Request("http://worker.test/health", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { problems: { setting: string }[] }).problems.map((p) => p.setting)).toContain("BITRIX_WEBHOOK_URL");
  });

  it("answers any route's 503 with 'misconfigured', naming no setting", async () => {
    const worker = workerWithEnv({ BITRIX_WEBHOOK_URL: undefined });
    const res = await worker(new Request("http://worker.test/webhooks/comagic?token=x", { method: "POST", body: "{}" }));
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ error: "misconfigured", message: "The worker is misconfigured" });
    expect(body).not.toContain("BITRIX");
  });
});

describe("the admin routes", () => {
  it("answer a wrong token with 401 and a Bearer challenge, no-store", async () => {
    const res = await admin("/dead-letters", {}, "wrong-token");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ error: "unauthorized", message: "Missing or invalid bearer token" });
  });

  it("turn away an address that keeps guessing, even when it then brings the right token", async () => {
    const ip = "198.51.100.250";
    const attempt = (token: string) => admin("/dead-letters", { headers: { "cf-connecting-ip": ip } }, token);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await attempt(`guess-${i}`)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.at(-1)).toBe(429);
    expect((await attempt(ADMIN_TOKEN)).status).toBe(429);
    // Another address is not affected.
    expect((await admin("/dead-letters", { headers: { "cf-connecting-ip": "198.51.100.251" } })).status).toBe(200);
    await env.COMAGIC_CACHE?.delete(`admin-blocked:${ip}`);
  });

  it("refuse a body over 16 KiB with 413 before reading it", async () => {
    const res = await admin("/applied", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ keys: ["x".repeat(ADMIN_MAX_BYTES)] }) });
    expect(res.status).toBe(413);
  });
});

describe("the Bitrix24 app's routes", () => {
  it.each(["/bitrix/tab", "/bitrix/install", "/bitrix/call"])("refuse a body over 16 KiB at %s with 413", async (path) => {
    const res = await workerWithEnv({})(
      new Request(`http://worker.test${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `AUTH_ID=${"a".repeat(APP_MAX_BYTES)}` }),
    );
    expect(res.status).toBe(413);
  });

  it("limit tab requests per address, each of which would cost a Bitrix24 call", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 62; i++) {
      const res = await workerWithEnv({})(
        new Request("http://worker.test/bitrix/tab", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": "198.51.100.77" }, body: "PLACEMENT=nope" }),
      );
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 60).every((s) => s === 400)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });
});

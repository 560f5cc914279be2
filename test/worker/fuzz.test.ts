import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { leadJobSchema } from "../../worker/jobs/schema";
import { hmacHex, makeCallSession, makeChatSession, SECRET, TOKEN } from "./support";

/*
 * Property tests: random and mutated bodies, headers and encodings thrown at the two public endpoints.
 * Whatever arrives, the answer is a deliberate 2xx/4xx (never a 5xx or an escaped exception), and a job is
 * enqueued only for a request that was accepted, and only a job the consumer can read.
 */

const ACCEPTABLE = new Set([200, 202, 303, 400, 401, 403, 413, 429]);
// `npm test` proves it on 1,500 requests per endpoint (every kind of input, each many times); `npm run soak` (TEST_SIZE=full) on 50,000.
const FULL = env.TEST_SIZE === "full";
const RUNS = FULL ? 50_000 : 1_500;

function recordingEnv() {
  const sent: unknown[] = [];
  const queue = { send: async (body: unknown) => void sent.push(body), sendBatch: async (bodies: { body: unknown }[]) => void sent.push(...bodies.map((b) => b.body)) };
  return { sent, env: { ...env, LEAD_JOBS: queue as unknown as typeof env.LEAD_JOBS, FORM_RATE_LIMITER: { limit: async () => ({ success: true }) } } };
}

/**
 * `acceptedStatuses`: the answers that mean "queued" for this endpoint (a form posted by a browser gets a
 * redirect or a thank-you page). `dropped`: a honeypot submission, answered as accepted, never enqueued.
 */
async function check(res: Response, sent: unknown[], before: number, acceptedStatuses: number[], dropped = false): Promise<void> {
  expect(ACCEPTABLE.has(res.status), `status ${res.status}: ${await res.clone().text()}`).toBe(true);
  if (acceptedStatuses.includes(res.status) && !dropped) {
    expect(sent.length).toBe(before + 1);
    const job = leadJobSchema.safeParse(sent.at(-1));
    expect(job.success).toBe(true);
    if (job.success && job.data.event.phone) expect(job.data.event.phone).toMatch(/^\+\d{6,15}$/);
  } else {
    expect(sent.length).toBe(before);
  }
}

/** A valid body with one field replaced by anything at all, or removed. */
function mutated(base: () => Record<string, unknown>, nested: string | null) {
  return fc.tuple(fc.nat(), fc.oneof(fc.anything(), fc.constant(undefined))).map(([i, value]) => {
    const body = base();
    const target = (nested ? body[nested] : body) as Record<string, unknown>;
    const keys = Object.keys(target);
    const key = keys[i % keys.length] ?? "id";
    if (value === undefined) delete target[key];
    else target[key] = value;
    return JSON.stringify(body);
  });
}

const webhookBodies = fc.oneof(
  fc.string(),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  mutated(() => makeCallSession(), "call_session"),
  mutated(() => makeChatSession({ visitor_email: "a@b.ru" }), "chat_session"),
  mutated(() => ({ event_type: "call_session_completed", call_session_id: "1", contact_phone_number: "79123456789", talk_time_duration: "5", tag_names: "a,b" }), null),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => String.fromCharCode(...bytes)),
);

describe("fuzzing POST /webhooks/comagic", () => {
  it(`answers ${RUNS} random requests with a deliberate status and enqueues only what it accepted`, async () => {
    const { sent, env: testEnv } = recordingEnv();
    await fc.assert(
      fc.asyncProperty(
        webhookBodies,
        fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x"),
        fc.constantFrom("valid", "wrong", "none"),
        fc.constantFrom("valid", "wrong", "garbage", "none"),
        async (body, type, tokenKind, signatureKind) => {
          const headers: Record<string, string> = {};
          if (type) headers["content-type"] = type;
          if (signatureKind === "valid") headers["x-comagic-signature"] = await hmacHex(body, SECRET);
          if (signatureKind === "wrong") headers["x-comagic-signature"] = await hmacHex(`${body} `, SECRET);
          if (signatureKind === "garbage") headers["x-comagic-signature"] = "zz";
          const token = tokenKind === "valid" ? `?token=${TOKEN}` : tokenKind === "wrong" ? "?token=nope" : "";
          const before = sent.length;
          const res = await app.request(`/webhooks/comagic${token}`, { method: "POST", headers, body }, testEnv);
          await check(res, sent, before, [202]);
          if (tokenKind !== "valid" && signatureKind !== "valid") expect(res.status).toBe(401);
        },
      ),
      { numRuns: RUNS },
    );
  }, 300_000);
});

const formFields = fc.dictionary(
  fc.oneof(
    fc.constantFrom("name", "phone", "email", "message", "comment", "form_name", "_hp", "_redirect", "submission_id", "utm_source", "first_utm_source", "comagic_visitor_id", "page_url"),
    fc.string({ maxLength: 20 }),
  ),
  fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom("+79123456789", "8 912 345-67-89", "a@b.ru", "not-an-email", "https://shop.example.ru/x", "")),
  { maxKeys: 12 },
);

describe("fuzzing POST /forms", () => {
  it(`answers ${RUNS} random forms in every encoding with a deliberate status and enqueues only what it accepted`, async () => {
    const { sent, env: testEnv } = recordingEnv();
    await fc.assert(
      fc.asyncProperty(
        formFields,
        fc.constantFrom("json", "beacon", "urlencoded", "multipart", "garbage", "json-array"),
        fc.constantFrom("https://shop.example.ru", "https://evil.example.com", "null", undefined),
        fc.constantFrom("*/*", "text/html"),
        fc.string({ maxLength: 80 }),
        async (fields, encoding, origin, accept, garbage) => {
          const headers: Record<string, string> = { accept, "cf-connecting-ip": "203.0.113.9" };
          if (origin) headers.origin = origin;
          let body: BodyInit;
          if (encoding === "json" || encoding === "beacon") {
            body = JSON.stringify(fields);
            headers["content-type"] = encoding === "json" ? "application/json" : "text/plain;charset=UTF-8";
          } else if (encoding === "urlencoded") {
            body = new URLSearchParams(fields).toString();
            headers["content-type"] = "application/x-www-form-urlencoded";
          } else if (encoding === "multipart") {
            const data = new FormData();
            // workerd cannot even build a multipart part whose name ends in a backslash: not a worker input.
            for (const [k, v] of Object.entries(fields)) if (!k.endsWith("\\")) data.append(k, v);
            body = data;
          } else if (encoding === "json-array") {
            body = JSON.stringify([fields]);
            headers["content-type"] = "application/json";
          } else {
            body = garbage;
            headers["content-type"] = "text/plain";
          }
          const before = sent.length;
          const res = await app.request("/forms", { method: "POST", headers, body }, testEnv);
          const honeypot = encoding !== "garbage" && encoding !== "json-array" && Boolean(fields._hp?.trim());
          await check(res, sent, before, [200, 202, 303], honeypot);
          if (origin && origin !== "https://shop.example.ru") expect(res.status).toBe(403);
          if (res.status === 303) expect(new URL(res.headers.get("location") ?? "").origin).toMatch(/^https:\/\/(shop\.example\.ru|[a-z0-9.-]+\.example\.org)$/);
        },
      ),
      { numRuns: RUNS },
    );
  }, 300_000);
});

const APP_RUNS = FULL ? 4_000 : 400;
const appFields = fc.dictionary(
  fc.oneof(
    fc.constantFrom("AUTH_ID", "REFRESH_ID", "member_id", "AUTH_EXPIRES", "PLACEMENT", "PLACEMENT_OPTIONS", "APPLICATION_TOKEN", "DOMAIN", "auth[access_token]", "token"),
    fc.string({ maxLength: 12 }),
  ),
  fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("sandbox-member-0001", "CRM_LEAD_DETAIL_TAB", '{"ID":"1"}', '{"ID":"x"}', "3600", "-1", "")),
  { maxKeys: 8 },
);

describe("fuzzing the Bitrix24 app's routes and the admin routes", () => {
  it(`answers ${APP_RUNS} random requests with a deliberate status, starts no call, and never lets a stranger into /admin`, async () => {
    const callsBefore = ((await (await fetch(`${env.SANDBOX_URL}/_sandbox/comagic/calls-made`)).json()) as unknown[]).length;
    const testEnv = { ...env, APP_RATE_LIMITER: { limit: async () => ({ success: true }) }, ADMIN_RATE_LIMITER: { limit: async () => ({ success: true }) } };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/bitrix/install", "/bitrix/tab", "/bitrix/call", "/admin/dead-letters", "/admin/applied", "/admin/reconcile", "/admin/dead-letters/x/replay"),
        appFields,
        fc.constantFrom("form", "json", "garbage"),
        fc.constantFrom("none", "wrong", "garbage"),
        fc.string({ maxLength: 60 }),
        async (path, fields, encoding, auth, garbage) => {
          const headers: Record<string, string> = { "cf-connecting-ip": "203.0.113.10" };
          if (auth === "wrong") headers.authorization = "Bearer not-the-token";
          if (auth === "garbage") headers.authorization = garbage;
          let body: string;
          if (encoding === "form") {
            body = new URLSearchParams(fields).toString();
            headers["content-type"] = "application/x-www-form-urlencoded";
          } else if (encoding === "json") {
            body = JSON.stringify(fields);
            headers["content-type"] = "application/json";
          } else body = garbage;
          const method = path === "/admin/dead-letters" ? "GET" : "POST";
          const res = await app.request(path, method === "GET" ? { headers } : { method, headers, body }, testEnv);
          expect([200, 400, 401, 403, 404, 409, 413, 422, 429].includes(res.status), `${path} → ${res.status}: ${await res.clone().text()}`).toBe(true);
          if (path.startsWith("/admin")) expect(res.status === 401 || res.status === 400).toBe(true);
        },
      ),
      { numRuns: APP_RUNS },
    );
    const callsAfter = ((await (await fetch(`${env.SANDBOX_URL}/_sandbox/comagic/calls-made`)).json()) as unknown[]).length;
    expect(callsAfter).toBe(callsBefore);
  }, 300_000);
});

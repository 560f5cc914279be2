import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { callsReportRow } from "../../sandbox/comagic/calls-report-row";
import type { Env } from "../../worker/env";
import worker from "../../worker/index";
import { portalTickJob } from "../../worker/jobs/schema";
import type { ConversionState, Destination } from "../../worker/storage/conversions";
import { deadLetterStore } from "../../worker/storage/d1";
import { ensureSchema } from "../../worker/storage/d1-schema";
import type { DealState } from "../../worker/storage/deal-journal";
import { d1FeedState } from "../../worker/storage/feed-state";
import { PORTALS, type PortalName, portalSettingsOf, webhookTokenOf } from "./portal-support";
import { ADMIN_TOKEN, admin, makeCallSession, sandbox, uniquePhone, uniqueSessionId, workerWithEnv } from "./support";

/*
 * The agency's page (issue #24): every portal's health on one page, and an alert when one changes. Two stored portals
 * of this file's own (agency-a on the sandbox's alpha portal, agency-b on beta) beside whatever the shard's other
 * files made; each test looks at its own portals, and the file removes them when done. Its calls and forms go to those
 * two only: follow-ups of the default portal's, still running after the file, would change what /health says of it.
 * agency-a also has the deals and conversions of issue #25 on (LOOP_ON), agency-b none of them.
 */

const db = () => env.DB as D1Database;
const A = "agency-a";
const B = "agency-b";
const sandboxOf: Record<string, PortalName> = { [A]: "alpha", [B]: "beta" };
const originOf = (portal: string) => `https://${portal}.example`;
/** Deals to CoMagic, conversions to Metrica and GA4 (the sandboxes' counter and property; no test here sends any). */
const LOOP_ON = {
  COMAGIC_DEALS: "true",
  METRICA_COUNTER_ID: "2215573",
  METRICA_TOKEN: "sandbox-metrica-token",
  METRICA_API_URL: env.SANDBOX_URL,
  GA4_MEASUREMENT_ID: "G-SANDBOX000",
  GA4_API_SECRET: "sandbox-ga4-secret",
  GA4_API_URL: env.SANDBOX_URL,
};

type Summary = {
  portal: string;
  name: string;
  status: "ok" | "degraded" | "failing";
  statusText: string;
  reasons: { code: string; status: string; text: string }[];
  today: Record<string, number> | null;
  week: Record<string, number> | null;
  last: Record<string, string | null> | null;
  lastNotificationAt: string | null;
  lastErrors: { bitrix24: { text: string } | null; comagic: { text: string } | null };
  deadLettersWaiting: number;
  details: string;
  loop: Record<string, unknown> | null;
};

async function agency(query = "?lang=en", fetcher: (request: Request) => Promise<Response> = (r) => exports.default.fetch(r)): Promise<Summary[]> {
  const res = await fetcher(new Request(`http://worker.test/admin/agency${query}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { portals: Summary[] }).portals;
}
const entryOf = (portals: Summary[], portal: string): Summary => {
  const found = portals.find((p) => p.portal === portal);
  if (!found) throw new Error(`${portal} is not on the agency page`);
  return found;
};

const webhookTo = (portal: string, body: unknown) =>
  exports.default.fetch(
    new Request(`http://worker.test/webhooks/comagic/${portal}?token=${webhookTokenOf(sandboxOf[portal] ?? portal)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
const formTo = (portal: string, fields: Record<string, string>) =>
  exports.default.fetch(
    new Request(`http://worker.test/forms/${portal}`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: originOf(portal), "cf-connecting-ip": `192.0.2.${Math.floor(Math.random() * 250)}` },
      body: JSON.stringify(fields),
    }),
  );

/** The CoMagic feed's state as a feed that has failed since `minutesAgo` leaves it, with `error` as its last words. */
async function feedFailingSince(portal: string, minutesAgo: number, error: string): Promise<void> {
  const since = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  await d1FeedState(db(), portal).put({
    cursor: since,
    lastRunAt: new Date(Date.now() - 60_000).toISOString(),
    lastSuccessAt: since,
    lastReport: { calls: 0 },
    lastError: error,
    lastCallsSeenAt: null,
  });
}
async function feedReadingAgain(portal: string): Promise<void> {
  const now = new Date().toISOString();
  await d1FeedState(db(), portal).put({ cursor: now, lastRunAt: now, lastSuccessAt: now, lastReport: { calls: 0 }, lastError: null, lastCallsSeenAt: null });
}

beforeAll(async () => {
  for (const portal of [A, B]) {
    const name = sandboxOf[portal] as PortalName;
    const res = await admin(`/portals/${portal}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: portalSettingsOf(name, { ALLOWED_ORIGINS: originOf(portal), ...(portal === A ? LOOP_ON : {}) }) }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  }
});

afterAll(async () => {
  for (const portal of [A, B]) await admin(`/portals/${portal}`, { method: "DELETE" });
});

describe("GET /admin/agency", () => {
  it("refuses a request without the admin token, or with a wrong one", async () => {
    for (const authorization of [null, "Bearer not-the-admin-token-0123456789abcdef"]) {
      const res = await exports.default.fetch(new Request("http://worker.test/admin/agency", { headers: authorization ? { authorization } : {} }));
      expect(res.status).toBe(401);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(await res.text()).not.toContain(A);
    }
    const details = await exports.default.fetch(new Request(`http://worker.test/admin/agency/${A}`));
    expect(details.status).toBe(401);
  });

  it("counts events that arrive through the webhook and the forms for their portal only", async () => {
    const before = Date.now();
    expect((await webhookTo(A, makeCallSession())).status).toBe(202);
    expect((await formTo(A, { name: "Anna", phone: uniquePhone().e164, form_name: "Callback" })).status).toBe(202);
    // A notification that brings no lead still shows that CoMagic's notifications come.
    expect((await webhookTo(B, { event_type: "balance_changed" })).status).toBe(200);

    const portals = await agency();
    const a = entryOf(portals, A);
    expect(a.today).toEqual({ call: 1, chat: 0, request: 0, form: 1 });
    expect(a.week).toEqual({ call: 1, chat: 0, request: 0, form: 1 });
    for (const source of ["call", "form"]) expect(Date.parse(a.last?.[source] ?? "")).toBeGreaterThanOrEqual(before - 1_000);
    expect(a.last).toMatchObject({ chat: null, request: null });
    expect(Date.parse(a.lastNotificationAt ?? "")).toBeGreaterThanOrEqual(before - 1_000);

    const b = entryOf(portals, B);
    expect(b.today).toEqual({ call: 0, chat: 0, request: 0, form: 0 });
    expect(b.last).toEqual({ call: null, chat: null, request: null, form: null });
    expect(Date.parse(b.lastNotificationAt ?? "")).toBeGreaterThanOrEqual(before - 1_000);
  });

  it("counts a call the feed finds that no notification brought, once", async () => {
    const before = entryOf(await agency(), A).today?.call ?? 0;
    const call = callsReportRow({ id: uniqueSessionId(), phone: uniquePhone().e164.slice(1), visitorId: null, startedAt: new Date(Date.now() - 20 * 60_000) });
    await fetch(`${PORTALS.alpha.url}/_sandbox/comagic/data`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ calls: [call] }) });
    const window = JSON.stringify({ from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date().toISOString() });
    const read = await admin(`/reconcile?portal=${A}`, { method: "POST", headers: { "content-type": "application/json" }, body: window });
    expect(await read.json()).toMatchObject({ enqueued: 1 });
    expect(entryOf(await agency(), A).today?.call).toBe(before + 1);
  });

  it("writes the counts once per request, and a D1 that refuses them fails neither the webhook nor the form", async () => {
    const writes: string[] = [];
    const watching = (refuse: boolean): D1Database =>
      new Proxy(db(), {
        get(target, property) {
          if (property === "prepare") {
            return (sql: string) => {
              if (!/^\s*INSERT INTO portal_activity/i.test(sql)) return target.prepare(sql);
              writes.push(sql);
              if (!refuse) return target.prepare(sql);
              const refused: D1PreparedStatement = { bind: () => refused, run: () => Promise.reject(new Error("D1_ERROR: overloaded")) } as unknown as D1PreparedStatement;
              return refused;
            };
          }
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const counted = workerWithEnv({ DB: watching(false) });
    const post = (fetcher: typeof counted, body: unknown) =>
      fetcher(
        new Request(`http://worker.test/webhooks/comagic/${A}?token=${webhookTokenOf("alpha")}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      );
    expect((await post(counted, makeCallSession())).status).toBe(202);
    expect(writes).toHaveLength(1);

    const refusing = workerWithEnv({ DB: watching(true) });
    expect((await post(refusing, makeCallSession())).status).toBe(202);
    const form = await refusing(
      new Request(`http://worker.test/forms/${A}`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: originOf(A), "cf-connecting-ip": "198.51.100.77" },
        body: JSON.stringify({ phone: uniquePhone().e164, name: "Oleg" }),
      }),
    );
    expect(form.status).toBe(202);
    expect(writes).toHaveLength(3);
  });

  it("lists a failing portal before a degraded one, with the reasons in words and no secret or full phone", async () => {
    const beta = PORTALS.beta;
    await feedFailingSince(B, 125, `CoMagic Data API login.user: auth_error: the password ${beta.comagic.password} is wrong`);
    await deadLetterStore(db()).record([
      {
        id: "agency-letter-1",
        queue: "comagic-lead-jobs",
        jobType: "lead.ingest",
        portal: A,
        letter: {
          job: { type: "lead.ingest", portal: A, event: { key: "3100000001", phone: "+79123456789" } },
          reason: "Bitrix24 ERROR_CORE: the value +7 912 345-67-89 is not allowed",
          code: "ERROR_CORE",
          attempts: 1,
          failedAt: new Date().toISOString(),
        },
      },
    ]);

    const portals = await agency();
    const rank = { failing: 0, degraded: 1, ok: 2 };
    expect(portals.map((p) => rank[p.status])).toEqual(portals.map((p) => rank[p.status]).sort());
    const b = entryOf(portals, B);
    expect(b.status).toBe("failing");
    expect(b.reasons).toEqual([{ code: "feed_failing", status: "failing", text: expect.stringMatching(/^the CoMagic feed has not read for 2 h: CoMagic Data API login.user: auth_error/) }]);
    const a = entryOf(portals, A);
    expect(a).toMatchObject({ status: "degraded", statusText: "Degraded", deadLettersWaiting: 1, reasons: [{ code: "dead_letters", text: "1 dead letter waits for a replay" }] });
    expect(a.lastErrors.bitrix24?.text).toContain("Bitrix24 ERROR_CORE");
    expect(portals.findIndex((p) => p.portal === B)).toBeLessThan(portals.findIndex((p) => p.portal === A));

    const russian = entryOf(await agency("?lang=ru"), A);
    expect(russian).toMatchObject({ statusText: "С перебоями", reasons: [{ text: "невыполненные задания ждут повтора: 1" }] });

    const details = await admin(`/agency/${A}?lang=en`);
    expect(details.status).toBe(200);
    const detail = (await details.json()) as { deadLetters: { id: string; replay: string; reason: string }[] };
    expect(detail.deadLetters).toEqual([expect.objectContaining({ id: "agency-letter-1", replay: "/admin/dead-letters/agency-letter-1/replay" })]);

    const everything = JSON.stringify([portals, detail]);
    for (const secret of [beta.comagic.password, webhookTokenOf("beta"), webhookTokenOf("alpha"), "9123456789", "345-67-89", ADMIN_TOKEN]) expect(everything).not.toContain(secret);
    expect((await admin("/agency/no-such-portal")).status).toBe(404);
  });

  it("shows the default portal as failing when env's settings do not parse, naming the setting and not its value", async () => {
    const broken = workerWithEnv({ BITRIX_WEBHOOK_URL: "https://portal.example.ru/not-a-webhook-code-42" });
    const entry = entryOf(await agency("?lang=en", broken), "default");
    expect(entry.status).toBe("failing");
    expect(entry.reasons[0]).toMatchObject({ code: "settings_invalid", text: expect.stringContaining("BITRIX_WEBHOOK_URL") });
    expect(JSON.stringify(entry)).not.toContain("not-a-webhook-code-42");
  });
});

/** A UTC day `daysAgo` before today, as the loop's tables write it. */
const dayAgo = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);

/**
 * What the deal loop and the conversions left for `portal`: deals by state (one sent deal's call too old to link),
 * conversions settled today, 3 days ago and 10 days ago (before the week) or still waiting, and Metrica's uploads.
 */
async function seedLoop(portal: string): Promise<void> {
  await ensureSchema(db());
  const at = new Date().toISOString();
  const deals: [DealState, number][] = [
    ["sent", 3],
    ["waiting", 2],
    ["rejected", 1],
    ["gone", 1],
  ];
  const conversions: [Destination, ConversionState, number | null, number][] = [
    ["metrica", "sent", 0, 4],
    ["metrica", "too_old", 0, 1],
    ["metrica", "no_visitor", 0, 1],
    ["metrica", "failed", 0, 2],
    ["metrica", "goal_off", 0, 1],
    ["metrica", "sent", 3, 2],
    ["metrica", "too_old", 3, 1],
    ["metrica", "sent", 10, 5],
    ["metrica", "waiting", null, 3],
    ["ga4", "sent", 0, 2],
    ["ga4", "sent", 2, 3],
    ["ga4", "no_visitor", 2, 1],
  ];
  const uploads: [string, number, string, number | null, number | null][] = [
    ["today-1", 0, "PROCESSED", 3, 1],
    ["today-2", 0, "UPLOADED", null, null],
    ["earlier", 3, "LINKAGE_FAILURE", 2, 0],
    ["before-the-week", 10, "PROCESSED", 5, 0],
  ];
  await db().batch([
    ...deals.flatMap(([state, count]) =>
      Array.from({ length: count }, (_, i) =>
        db()
          .prepare("INSERT OR REPLACE INTO deal_journal (portal, deal_id, source_entity, source_id, state, changed_at, flags) VALUES (?, ?, 'lead', ?, ?, ?, ?)")
          .bind(portal, `${state}-${i}`, `${state}-${i}`, state, at, state === "sent" && i === 0 ? "communication_older_than_30_days" : null),
      ),
    ),
    ...conversions.flatMap(([destination, state, daysAgo, count]) =>
      Array.from({ length: count }, (_, i) =>
        db()
          .prepare("INSERT OR REPLACE INTO conversions (portal, destination, key, goal, visitor_ref, at, state, day) VALUES (?, ?, ?, 'won', '12', ?, ?, ?)")
          .bind(portal, destination, `deal:${state}-${daysAgo}-${i}:won`, at, state, daysAgo === null ? null : dayAgo(daysAgo)),
      ),
    ),
    ...uploads.map(([id, daysAgo, status, linked, notLinked]) =>
      db()
        .prepare("INSERT OR REPLACE INTO metrica_uploads (portal, upload_id, day, rows, status, linked, not_linked, created_at) VALUES (?, ?, ?, 4, ?, ?, ?, ?)")
        .bind(portal, id, dayAgo(daysAgo), status, linked, notLinked, at),
    ),
  ]);
}

/** The D1 statements that read the loop's tables, counted through a D1 that lets everything else pass. */
function countingLoopReads(): { db: D1Database; reads: string[] } {
  const reads: string[] = [];
  const watched = new Proxy(db(), {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          if (/^\s*SELECT\b[\s\S]*\bFROM (deal_journal|conversions|metrica_uploads)\b/i.test(sql)) reads.push(sql);
          return target.prepare(sql);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: watched, reads };
}

describe("deals and conversions (issue #25) on the agency page", () => {
  beforeAll(async () => {
    await seedLoop(A);
    // The same rows for agency-b, which has none of it on: they must not show.
    await seedLoop(B);
  });

  const expected = {
    deals: { sent: 3, waiting: 2, rejected: 1, gone: 1, notLinked: 1 },
    metrica: {
      today: { sent: 4, linked: 3, notLinked: 1, processing: 1, tooOld: 1, noVisitor: 1, failed: 2 },
      week: { sent: 6, linked: 5, notLinked: 1, processing: 1, tooOld: 2, noVisitor: 1, failed: 2 },
    },
    ga4: { today: { sent: 2, tooOld: 0, noVisitor: 0, failed: 0 }, week: { sent: 5, tooOld: 0, noVisitor: 1, failed: 0 } },
  };

  it("shows the deals sent to CoMagic, and Metrica's and GA4's conversions of today and the week, for a portal that has them on", async () => {
    const a = entryOf(await agency(), A);
    expect(a.loop).toEqual(expected);
    // Metrica refused two of today's: a token or counter to fix.
    expect(a.reasons).toContainEqual({ code: "conversions_refused", status: "degraded", text: "Yandex Metrica refused 2 conversion(s) today: check the token and counter" });
    const details = await admin(`/agency/${A}?lang=en`);
    expect(details.status).toBe(200);
    expect(((await details.json()) as Summary).loop).toEqual(expected);
  });

  it("shows nothing of them for a portal that has none on, whatever its tables hold", async () => {
    const b = entryOf(await agency(), B);
    expect(b.loop).toBeNull();
    expect(b.reasons.map((r) => r.code)).not.toContain("conversions_refused");
    expect(((await (await admin(`/agency/${B}`)).json()) as Summary).loop).toBeNull();
  });

  it("shows only what a portal has on: Metrica without deals or GA4", async () => {
    const C = "agency-c";
    const res = await admin(`/portals/${C}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: portalSettingsOf("gamma", { METRICA_COUNTER_ID: LOOP_ON.METRICA_COUNTER_ID, METRICA_TOKEN: LOOP_ON.METRICA_TOKEN }) }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    try {
      await seedLoop(C);
      expect(entryOf(await agency(), C).loop).toEqual({ deals: null, metrica: expected.metrica, ga4: null });
    } finally {
      await admin(`/portals/${C}`, { method: "DELETE" });
    }
  });

  it("reads every portal's figures in three statements, however many portals have them on, and none for a portal without", async () => {
    const C = "agency-c";
    const res = await admin(`/portals/${C}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: portalSettingsOf("gamma", LOOP_ON) }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    try {
      const list = countingLoopReads();
      const portals = await agency("?lang=en", workerWithEnv({ DB: list.db }));
      expect(portals.filter((p) => p.loop).map((p) => p.portal)).toEqual(expect.arrayContaining([A, C]));
      expect(list.reads).toHaveLength(3);

      const one = countingLoopReads();
      expect((await workerWithEnv({ DB: one.db })(new Request(`http://worker.test/admin/agency/${A}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }))).status).toBe(200);
      expect(one.reads).toHaveLength(3);

      const none = countingLoopReads();
      expect((await workerWithEnv({ DB: none.db })(new Request(`http://worker.test/admin/agency/${B}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }))).status).toBe(200);
      expect(none.reads).toEqual([]);
    } finally {
      await admin(`/portals/${C}`, { method: "DELETE" });
    }
  });
});

describe("GET /agency", () => {
  it("is a page that holds no data, under a strict policy, in the reader's language", async () => {
    const res = await exports.default.fetch(new Request("http://worker.test/agency", { headers: { "accept-language": "en-GB,en;q=0.9,ru;q=0.5" } }));
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const page = await res.text();
    expect(page).toContain('<html lang="en">');
    expect(page).toContain(`<script nonce="${nonce}">`);
    for (const data of [A, B, ADMIN_TOKEN, PORTALS.alpha.comagic.password]) expect(page).not.toContain(data);
    // The words for the deals and conversions come with the page's other words, in the reader's language.
    expect(page).toContain("Deals and conversions");
    expect(page).toContain("{} refused by Metrica (check the token and counter)");
    const russian = await (await exports.default.fetch(new Request("http://worker.test/agency?lang=ru"))).text();
    expect(russian).toContain('<html lang="ru">');
    expect(russian).toContain("Токен администратора");
    expect(russian).toContain("Сделки и конверсии");
    expect(russian).not.toContain("refused by Metrica");
  });
});

describe("alerts", () => {
  const alertsUrl = `${env.SANDBOX_URL}/_sandbox/alerts`;
  const withAlerts = { ...env, ALERT_WEBHOOK_URL: alertsUrl } as Env;
  const alerts = async () => ((await (await fetch(alertsUrl)).json()) as { alerts: { text: string }[] }).alerts;

  /** The cron's tick of one portal, as the enrichment queue delivers it, with ALERT_WEBHOOK_URL set. */
  async function tick(portal: string): Promise<void> {
    const batch = createMessageBatch("comagic-enrich-jobs", [{ id: `tick-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: portalTickJob(portal, new Date()) }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, withAlerts);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
  }

  beforeAll(async () => {
    await fetch(alertsUrl, { method: "DELETE" });
  });

  it("posts once when a portal starts failing and once when it recovers, with no secret or full phone in it", async () => {
    const lines: { event?: string; portal?: string; status?: string; reasons?: string[] }[] = [];
    const original = console.log;
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      if (typeof args[0] === "string" && args[0].startsWith("{")) lines.push(JSON.parse(args[0]));
      original(...args);
    });
    const beta = PORTALS.beta;
    await feedFailingSince(B, 125, `CoMagic Data API login.user: auth_error for ${beta.comagic.login}/${beta.comagic.password} calling +7 912 345-67-89`);

    await tick(B);
    await tick(B);
    const failing = await alerts();
    expect(failing).toHaveLength(1);
    expect(failing[0]?.text).toMatch(/^CoMagic → Bitrix24: portal agency-b \(127\.0\.0\.1:\d+\) is failing: the CoMagic feed has not read for 2 h: CoMagic Data API login\.user: auth_error/);
    expect(lines.filter((l) => l.event === "portal.alert")).toEqual([expect.objectContaining({ portal: B, status: "failing", reasons: [expect.stringContaining("the CoMagic feed has not read")] })]);

    await feedReadingAgain(B);
    await tick(B);
    await tick(B);
    const all = await alerts();
    expect(all).toHaveLength(2);
    expect(all[1]?.text).toMatch(/^CoMagic → Bitrix24: portal agency-b \(127\.0\.0\.1:\d+\) is OK again \(it was failing\)$/);

    const texts = JSON.stringify(all);
    for (const secret of [beta.comagic.password, webhookTokenOf("beta"), new URL(beta.bitrixWebhookUrl).pathname, "9123456789", "345-67-89", ADMIN_TOKEN]) expect(texts).not.toContain(secret);
  });

  it("comes from the cron itself for a portal whose settings do not parse, which gets no tick", async () => {
    await fetch(alertsUrl, { method: "DELETE" });
    // No enrichment queue: the cron queues no tick, so only its own look at the broken portal can tell.
    const broken = { ...withAlerts, BITRIX_WEBHOOK_URL: "https://portal.example.ru/not-a-webhook-code-42", ENRICH_JOBS: undefined } as Env;
    try {
      for (let run = 0; run < 2; run++) await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), broken);
      const told = await alerts();
      expect(told).toEqual([{ text: expect.stringMatching(/^CoMagic → Bitrix24: portal default is failing: its settings do not parse \(BITRIX_WEBHOOK_URL\)/), at: expect.any(String) }]);
      expect(JSON.stringify(told)).not.toContain("not-a-webhook-code-42");
    } finally {
      await db().prepare("DELETE FROM sync_state WHERE portal = 'default' AND name = 'health.status'").run();
    }
  });

  it("tries a post the hook refused again at the next look, and still posts the change once", async () => {
    await fetch(alertsUrl, { method: "DELETE" });
    await sandbox("/_sandbox/alerts/fail", { times: 1 });
    await feedFailingSince(B, 125, "CoMagic Data API get.calls_report: timeout");
    await tick(B);
    expect(await alerts()).toHaveLength(0);
    await tick(B);
    await tick(B);
    expect(await alerts()).toEqual([expect.objectContaining({ text: expect.stringContaining("is failing") })]);
    await feedReadingAgain(B);
    await tick(B);
  });
});

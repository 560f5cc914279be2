import { describe, expect, it } from "vitest";
import { createGa4Sandbox, SANDBOX_GA4 } from "../../sandbox/ga4";
import { GA4_BACKDATE_WINDOW_MS, GA4_SEND_MARGIN_MS, ga4ClientIdOf, ga4EventNameSchema, type Ga4Payload, ga4PayloadsOf, ga4SamplePayload } from "../../worker/domain/ga4-events";
import type { Conversion } from "../../worker/domain/offline-conversions";
import { Ga4Error, ga4Client } from "../../worker/ga4/client";

/*
 * GA4 Measurement Protocol events for CRM conversions (issue #25 §3): the pure planning, and the adapter against the
 * GA4 sandbox called in-process through a fetch stub (unit tests have no network). Lines "l.<n>" are those of
 * `loop-docs/analytics__devguides__collection__protocol__ga4.EXCERPTS.txt`; "§4" is FACTS-loop §4.
 */

const HOUR = 3_600_000;
const NOW = Date.parse("2026-12-10T12:00:00Z");
const NAMES = { qualified: "crm_qualified", won: "crm_won" };
const CLIENT = "123456789.1700000000";
const BASE = "https://ga4.sandbox";

function wonDeal(id: string, at = NOW - HOUR, clientId: string | null = CLIENT, revenue: Conversion["revenue"] = { amount: 1234.567, currency: "rub" }) {
  return { conversion: { goal: "won", entity: { type: "deal", id }, at, revenue } satisfies Conversion, clientId };
}
function qualifiedLead(id: string, at = NOW - HOUR, clientId: string | null = CLIENT) {
  return { conversion: { goal: "qualified", entity: { type: "lead", id }, at, revenue: null } satisfies Conversion, clientId };
}

describe("the visitor's GA4 client id comes from the _ga cookie (§4: its last two parts)", () => {
  it.each([
    ["GA1.1.123456789.1700000000", "123456789.1700000000"],
    ["GA1.2.468604437.1611708469", "468604437.1611708469"],
    [" GA1.3.1.2 ", "1.2"],
    ["468604437.1611708469", "468604437.1611708469"],
  ])("reads %j as %j", (cookie, clientId) => {
    expect(ga4ClientIdOf(cookie)).toBe(clientId);
  });

  it.each([null, "", "GS1.1.1700000000.1.1.1700000100.0.0.0", "GA1.1.abc.1700000000", "123456789", "amp-XyZ", "1.2.3"])("finds no client id in %j", (cookie) => {
    expect(ga4ClientIdOf(cookie)).toBeNull();
  });
});

describe("a portal's GA4 event name (l.67, l.90, l.45)", () => {
  it.each(["crm_qualified", "crm_won", "Lead2", `a${"b".repeat(39)}`])("takes %j", (name) => {
    expect(ga4EventNameSchema.parse(` ${name} `)).toBe(name);
  });

  it.each([
    ["a leading underscore (l.67: 'Names must start with an alphabetic character')", "_badEventName", /starts with a Latin letter/],
    ["a leading digit (l.67)", "1st_sale", /starts with a Latin letter/],
    ["41 characters (l.90)", `a${"b".repeat(40)}`, /at most 40/],
    ["a hyphen (sending-events 'Limitations')", "crm-won", /Latin letters, digits and _/],
    ["a space", "crm won", /Latin letters, digits and _/],
    ["Cyrillic letters", "сделка_выиграна", /Latin letter/],
    ["the reserved session_start (l.45)", "session_start", /reserved/],
    ["an automatically collected name (support answer 13316687)", "form_submit", /reserved/],
    ["a reserved prefix", "ga_sale", /reserved/],
    ["nothing", "  ", /required/],
  ])("refuses %s", (_, name, reason) => {
    const parsed = ga4EventNameSchema.safeParse(name);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).join("; ")).toMatch(reason);
  });
});

describe("which conversions become which Measurement Protocol requests (issue #25 §3, §4)", () => {
  it("puts one client's conversions of one moment in one request dated by timestamp_micros, won with value and currency", () => {
    const plan = ga4PayloadsOf([qualifiedLead("7"), wonDeal("9")], NAMES, NOW);
    expect(plan).toEqual({
      payloads: [
        {
          client_id: CLIENT,
          // l.26-27: Unix epoch microseconds.
          timestamp_micros: (NOW - HOUR) * 1000,
          events: [
            { name: "crm_qualified", params: { conversion_key: "lead:7:qualified" } },
            { name: "crm_won", params: { conversion_key: "deal:9:won", value: 1234.57, currency: "RUB" } },
          ],
        },
      ],
      keys: [["lead:7:qualified", "deal:9:won"]],
      skipped: [],
    });
  });

  it("sends each client id in a request of its own: the body has one client_id (l.22-23)", () => {
    const plan = ga4PayloadsOf([wonDeal("1"), wonDeal("2", NOW - HOUR, "GA1.1.555.1700000001")], NAMES, NOW);
    expect(plan.payloads.map((p) => p.client_id)).toEqual([CLIENT, "555.1700000001"]);
    expect(plan.keys).toEqual([["deal:1:won"], ["deal:2:won"]]);
  });

  it("sends one client's conversions of different moments apart: timestamp_micros is the request's (l.26-27)", () => {
    const plan = ga4PayloadsOf([qualifiedLead("7", NOW - 2 * HOUR), wonDeal("9", NOW - HOUR)], NAMES, NOW);
    expect(plan.payloads.map((p) => p.timestamp_micros)).toEqual([(NOW - 2 * HOUR) * 1000, (NOW - HOUR) * 1000]);
  });

  it("puts at most 25 events in a request (sending-events 'Limitations')", () => {
    const plan = ga4PayloadsOf(
      Array.from({ length: 30 }, (_, i) => wonDeal(String(i))),
      NAMES,
      NOW,
    );
    expect(plan.payloads.map((p) => p.events.length)).toEqual([25, 5]);
    expect(plan.keys.flat()).toHaveLength(30);
  });

  it("counts too old a conversion more than 72 hours back, less the send margin, and sends one just inside (l.84)", () => {
    const edge = NOW - GA4_BACKDATE_WINDOW_MS + GA4_SEND_MARGIN_MS;
    const plan = ga4PayloadsOf([wonDeal("1", edge), wonDeal("2", edge - 1), wonDeal("3", NOW - 73 * HOUR)], NAMES, NOW);
    expect(plan.keys).toEqual([["deal:1:won"]]);
    expect(plan.payloads[0]?.timestamp_micros).toBe(edge * 1000);
    expect(plan.skipped).toEqual([
      { key: "deal:2:won", reason: "too_old" },
      { key: "deal:3:won", reason: "too_old" },
    ]);
  });

  it("dates a conversion from the future at now: timestamp_micros may not pass the request time (l.84)", () => {
    expect(ga4PayloadsOf([wonDeal("1", NOW + HOUR)], NAMES, NOW).payloads[0]?.timestamp_micros).toBe(NOW * 1000);
  });

  it("skips a goal without a usable event name and a visitor without a client id, with the reason", () => {
    const plan = ga4PayloadsOf([qualifiedLead("1"), wonDeal("2", NOW - HOUR, null), wonDeal("3", NOW - HOUR, "GS1.1.17"), wonDeal("4")], { qualified: null, won: "crm_won" }, NOW);
    expect(plan.skipped).toEqual([
      { key: "lead:1:qualified", reason: "goal_off" },
      { key: "deal:2:won", reason: "no_client_id" },
      { key: "deal:3:won", reason: "no_client_id" },
    ]);
    expect(ga4PayloadsOf([wonDeal("5")], { qualified: null, won: "session_start" }, NOW).skipped).toEqual([{ key: "deal:5:won", reason: "goal_off" }]);
  });

  it("sends a key once however often it comes, since GA4 would count every copy (§4 Idempotency)", () => {
    const plan = ga4PayloadsOf([wonDeal("9"), wonDeal("9"), wonDeal("9", NOW - 2 * HOUR)], NAMES, NOW);
    expect(plan.keys).toEqual([["deal:9:won"]]);
  });

  it.each([
    ["no revenue", null],
    ["a negative amount", { amount: -5, currency: "RUB" }],
    ["an amount that is no number", { amount: Number.NaN, currency: "RUB" }],
    ["a currency that is no ISO code", { amount: 5, currency: "рубли" }],
  ])("sends a won deal with %s without value and currency", (_, revenue) => {
    const plan = ga4PayloadsOf([wonDeal("9", NOW - HOUR, CLIENT, revenue)], NAMES, NOW);
    expect(plan.payloads[0]?.events[0]?.params).toEqual({ conversion_key: "deal:9:won" });
  });

  it("builds a sample request shaped like the real ones, for the validation server", () => {
    expect(ga4SamplePayload(NAMES, NOW)).toEqual({
      client_id: "0.1700000000",
      timestamp_micros: NOW * 1000,
      events: [
        { name: "crm_qualified", params: { conversion_key: "deal:0:qualified" } },
        { name: "crm_won", params: { conversion_key: "deal:0:won", value: 1000, currency: "RUB" } },
      ],
    });
  });
});

/** The client against the sandbox through a recording fetch stub; `answer` replaces the sandbox's answer. */
function setUp(options: { measurementId?: string; apiSecret?: string; answer?: (request: Request) => Promise<Response>; timeoutMs?: number } = {}) {
  const { app } = createGa4Sandbox({ now: () => NOW });
  const sent: Request[] = [];
  const fetchStub = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    sent.push(request.clone());
    return options.answer ? options.answer(request) : app.request(request);
  }) as typeof fetch;
  const client = ga4Client({
    measurementId: options.measurementId ?? SANDBOX_GA4.measurementId,
    apiSecret: options.apiSecret ?? SANDBOX_GA4.apiSecret,
    baseUrl: BASE,
    fetch: fetchStub,
    now: () => NOW,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const kept = async () => ((await (await app.request("/_sandbox/ga4/events")).json()) as { events: Record<string, unknown[]> }).events;
  const control = (path: string, body: unknown) => app.request(`/_sandbox/ga4${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { client, sent, kept, control };
}

async function caught(promise: Promise<unknown>): Promise<Ga4Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Ga4Error) return error;
    throw error;
  }
  throw new Error("expected a Ga4Error");
}

const PAYLOAD: Ga4Payload = { client_id: CLIENT, timestamp_micros: (NOW - HOUR) * 1000, events: [{ name: "crm_won", params: { conversion_key: "deal:9:won", value: 10, currency: "RUB" } }] };

describe("the GA4 client checks a setting on the validation server (l.52-74)", () => {
  it("posts the sample as JSON to /debug/mp/collect with measurement_id and api_secret in the query, strictly checked (l.13-21, l.60)", async () => {
    const { client, sent, kept } = setUp();
    expect(await client.validate()).toEqual({ ok: true });
    const request = sent[0];
    const url = new URL(request?.url ?? "");
    expect(`${url.origin}${url.pathname}`).toBe(`${BASE}/debug/mp/collect`);
    expect(Object.fromEntries(url.searchParams)).toEqual({ measurement_id: SANDBOX_GA4.measurementId, api_secret: SANDBOX_GA4.apiSecret });
    expect(request?.headers.get("content-type")).toBe("application/json");
    expect(await request?.json()).toEqual({ ...ga4SamplePayload(NAMES, NOW), validation_behavior: "ENFORCE_RECOMMENDATIONS" });
    // Validation events are not processed.
    expect(await kept()).toEqual({});
  });

  it("returns the server's messages for a sample it refuses", async () => {
    const { client } = setUp();
    const result = await client.validate({ client_id: CLIENT, events: [{ name: "_badEventName", params: {} }] });
    expect(result).toEqual({
      ok: false,
      messages: [{ fieldPath: "events", description: "Event at index: [0] has invalid name [_badEventName]. Names must start with an alphabetic character.", validationCode: "NAME_INVALID" }],
    });
  });

  it("cannot catch a wrong api_secret: the validation server does not check it, and /mp/collect drops the events unseen", async () => {
    const { client, kept } = setUp({ apiSecret: "a-wrong-secret" });
    expect(await client.validate()).toEqual({ ok: true });
    await client.send(PAYLOAD);
    expect(await kept()).toEqual({});
  });

  it("fails, transient, on an answer without validationMessages", async () => {
    const { client } = setUp({ answer: async () => new Response("<html>oops</html>", { status: 200 }) });
    expect(await caught(client.validate())).toMatchObject({ type: "unexpected_answer", transient: true });
  });

  it("refuses a measurement id that is not G-… before any request, and upper-cases a pasted lower-case one (l.20-21)", async () => {
    expect(() => ga4Client({ measurementId: "123456789", apiSecret: "s" })).toThrow(Ga4Error);
    expect(() => ga4Client({ measurementId: SANDBOX_GA4.measurementId, apiSecret: "has space" })).toThrow(/no spaces/);
    const { client, sent } = setUp({ measurementId: ` ${SANDBOX_GA4.measurementId.toLowerCase()} ` });
    await client.validate();
    expect(new URL(sent[0]?.url ?? "").searchParams.get("measurement_id")).toBe(SANDBOX_GA4.measurementId);
  });
});

describe("the GA4 client sends events to /mp/collect and never reads 2xx as valid (l.53)", () => {
  it("sends the domain's requests as they are, and the sandbox keeps the events with their time", async () => {
    const { client, sent, kept } = setUp();
    const plan = ga4PayloadsOf([qualifiedLead("7"), wonDeal("9")], NAMES, NOW);
    for (const payload of plan.payloads) await client.send(payload);
    expect(new URL(sent[0]?.url ?? "").pathname).toBe("/mp/collect");
    // l.60-61: no validation_behavior in production.
    expect(await sent[0]?.json()).toEqual(plan.payloads[0]);
    expect((await kept())[SANDBOX_GA4.measurementId]).toMatchObject([
      { clientId: CLIENT, name: "crm_qualified", timestampMicros: (NOW - HOUR) * 1000 },
      { clientId: CLIENT, name: "crm_won", params: { value: 1234.57, currency: "RUB" } },
    ]);
  });

  it("resolves on a 204 even for an event GA4 drops: 2xx proves arrival only, which is why validate exists", async () => {
    const { client, kept } = setUp();
    await client.send({ client_id: CLIENT, events: [{ name: "session_start", params: {} }] });
    expect(await kept()).toEqual({});
  });

  it.each([
    ["no client_id", { client_id: "", events: PAYLOAD.events }],
    ["no events", { client_id: CLIENT, events: [] }],
    ["26 events", { client_id: CLIENT, events: Array.from({ length: 26 }, () => ({ name: "crm_won", params: {} })) }],
  ])("refuses, permanent and without a request, a payload with %s that GA4 would drop in silence", async (_, payload) => {
    const { client, sent } = setUp();
    expect(await caught(client.send(payload))).toMatchObject({ type: "invalid_payload", transient: false });
    expect(sent).toEqual([]);
  });

  it("fails, transient, on an outage (5xx) with a minute's wait", async () => {
    const { client, control } = setUp();
    await control("/fail", { times: 1, status: 503 });
    expect(await caught(client.send(PAYLOAD))).toMatchObject({ type: "http_503", status: 503, transient: true, retryAfterSeconds: 60 });
  });

  it("fails, transient, on a 429 and keeps its Retry-After", async () => {
    const { client } = setUp({ answer: async () => new Response(null, { status: 429, headers: { "retry-after": "7" } }) });
    expect(await caught(client.send(PAYLOAD))).toMatchObject({ type: "http_429", transient: true, retryAfterSeconds: 7 });
  });

  it("fails, permanent, on another 4xx", async () => {
    const { client } = setUp({ answer: async () => new Response(null, { status: 400 }) });
    expect(await caught(client.send(PAYLOAD))).toMatchObject({ type: "http_400", transient: false });
  });

  it("fails, transient, on a network error and on a timeout, and never names the api_secret", async () => {
    const network = setUp({
      answer: async () => {
        throw new TypeError(`fetch failed for ${BASE}/mp/collect?api_secret=${SANDBOX_GA4.apiSecret}`);
      },
    });
    const lost = await caught(network.client.send(PAYLOAD));
    expect(lost).toMatchObject({ type: "network", transient: true });
    const slow = setUp({
      timeoutMs: 20,
      answer: (request) => new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason))),
    });
    const late = await caught(slow.client.send(PAYLOAD));
    expect(late).toMatchObject({ type: "timeout", transient: true });
    for (const error of [lost, late]) expect(`${error.message} ${error.stack}`).not.toContain(SANDBOX_GA4.apiSecret);
  });
});

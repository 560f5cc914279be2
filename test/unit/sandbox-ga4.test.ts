import { describe, expect, it } from "vitest";
import { createGa4Sandbox, type Ga4SandboxEvent, SANDBOX_GA4 } from "../../sandbox/ga4";
import { createSandbox } from "../../sandbox/server";

/*
 * The GA4 stand-in imitates the Measurement Protocol and its unkind parts: `../shared/reference/FACTS-loop.md` §4 and
 * §6 "GA4 MP", and `loop-docs/analytics__devguides__collection__protocol__ga4.EXCERPTS.txt`, whose lines the test
 * names cite as "l.<n>". Rules outside the excerpts name their page.
 */

const HOUR = 3_600_000;
const NOW = Date.parse("2026-12-10T12:00:00Z");
const MICROS = NOW * 1000;
const QUERY = `?measurement_id=${SANDBOX_GA4.measurementId}&api_secret=${SANDBOX_GA4.apiSecret}`;

interface Message {
  fieldPath: string;
  description: string;
  validationCode: string;
}
interface State {
  events: Record<string, Ga4SandboxEvent[]>;
  dropped: { measurementId: string | null; reason: string }[];
}

function ga4() {
  const clock = { now: NOW };
  const { app } = createGa4Sandbox({ now: () => clock.now });
  const post = (path: string, body: unknown, query = QUERY) =>
    app.request(`${path}${query}`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const collect = (body: unknown, query?: string) => post("/mp/collect", body, query);
  const debug = async (body: unknown, query?: string) => {
    const res = await post("/debug/mp/collect", body, query);
    return { status: res.status, messages: ((await res.json()) as { validationMessages: Message[] }).validationMessages };
  };
  const control = (path: string, body: unknown = {}) => app.request(`/_sandbox/ga4${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const state = async () => (await (await app.request("/_sandbox/ga4/events")).json()) as State;
  const kept = async (measurementId: string = SANDBOX_GA4.measurementId) => (await state()).events[measurementId] ?? [];
  return { app, clock, collect, debug, control, state, kept };
}

const won = { name: "crm_won", params: { value: 1500, currency: "RUB", conversion_key: "deal:7:won" } };
const body = (extra: Record<string, unknown> = {}) => ({ client_id: "123456789.1700000000", events: [won], ...extra });
const events = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `crm_event_${i}`, params: {} }));
const params = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i]));

describe("the GA4 sandbox's /mp/collect answers 2xx to anything and keeps only what is valid (l.53, §6 GA4 MP)", () => {
  it.each([
    ["garbage that is not JSON", "not json{", QUERY],
    ["an empty object", {}, QUERY],
    ["a valid body without the query", body(), ""],
    ["a valid body for an unknown measurement id", body(), "?measurement_id=G-UNKNOWN&api_secret=sandbox-ga4-secret"],
    ["a valid body with a wrong api_secret", body(), `?measurement_id=${SANDBOX_GA4.measurementId}&api_secret=wrong`],
  ])("answers 204 to %s and keeps nothing (l.53: no HTTP error codes even if malformed)", async (_, payload, query) => {
    const g = ga4();
    const res = await g.collect(payload, query);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await g.state()).events).toEqual({});
    expect((await g.state()).dropped.length).toBeGreaterThan(0);
  });

  it("keeps a registered pair's events under their measurement id, dated by timestamp_micros (l.26-27)", async () => {
    const g = ga4();
    const at = MICROS - 2 * HOUR * 1000;
    expect((await g.collect(body({ timestamp_micros: at }))).status).toBe(204);
    expect(await g.kept()).toEqual([{ clientId: "123456789.1700000000", userId: null, timestampMicros: at, name: "crm_won", params: won.params, receivedAt: new Date(NOW).toISOString() }]);
  });

  it("dates events without timestamp_micros at the request's time (l.26-27: 'defaults to the time of the request')", async () => {
    const g = ga4();
    await g.collect(body());
    expect((await g.kept())[0]?.timestampMicros).toBe(MICROS);
  });

  it("drops an unregistered pair's events until the pair is registered (l.17-21; §6: events of unknown pairs are dropped)", async () => {
    const g = ga4();
    const query = "?measurement_id=G-PORTAL7&api_secret=s3cret";
    await g.collect(body(), query);
    expect(await g.kept("G-PORTAL7")).toEqual([]);
    expect((await g.control("/secrets", { measurementId: "G-PORTAL7", apiSecret: "s3cret" })).status).toBe(200);
    await g.collect(body(), query);
    expect(await g.kept("G-PORTAL7")).toHaveLength(1);
    // Another secret of a known stream is still no secret of it.
    await g.collect(body(), "?measurement_id=G-PORTAL7&api_secret=other");
    expect(await g.kept("G-PORTAL7")).toHaveLength(1);
  });

  it.each([
    ["no client_id (l.22-23)", { events: [won] }],
    ["no events (l.28)", { client_id: "1.2", events: [] }],
    ["26 events (sending-events 'Limitations': at most 25)", { client_id: "1.2", events: events(26) }],
    ["a timestamp_micros more than 72 hours before the request (l.84)", body({ timestamp_micros: MICROS - 72 * HOUR * 1000 - 1 })],
    ["a timestamp_micros after the request (l.84: ≤ request time)", body({ timestamp_micros: MICROS + 1_000_000 })],
    ["a timestamp_micros that is not a number of microseconds (l.26)", body({ timestamp_micros: "yesterday" })],
  ])("drops the whole request with %s, still answering 204", async (_, payload) => {
    const g = ga4();
    expect((await g.collect(payload)).status).toBe(204);
    expect(await g.kept()).toEqual([]);
  });

  it("keeps an event dated exactly 72 hours before the request (l.84: ≥ request time − 72 hours)", async () => {
    const g = ga4();
    await g.collect(body({ timestamp_micros: MICROS - 72 * HOUR * 1000 }));
    expect(await g.kept()).toHaveLength(1);
  });

  it("drops a badly named event alone and keeps the others of its request (l.67, l.89-90, l.45)", async () => {
    const g = ga4();
    const names = ["_badEventName", "crm won", "a".repeat(41), "session_start", "firebase_sale", "crm_qualified"];
    await g.collect(body({ events: names.map((name) => ({ name, params: {} })) }));
    expect((await g.kept()).map((e) => e.name)).toEqual(["crm_qualified"]);
  });

  it("drops a parameter over a limit and keeps its event: the 26th parameter, a 101-character value (l.88-93)", async () => {
    const g = ga4();
    await g.collect(body({ events: [{ name: "crm_won", params: { ...params(25), extra: 1 } }] }));
    await g.collect(body({ events: [{ name: "crm_won", params: { note: "x".repeat(101), page_location: "y".repeat(1000), value: 5 } }] }));
    const [first, second] = await g.kept();
    expect(Object.keys(first?.params ?? {})).toHaveLength(25);
    expect(first?.params).not.toHaveProperty("extra");
    // l.93's exceptions: page_location may have 1,000 characters.
    expect(second?.params).toEqual({ page_location: "y".repeat(1000), value: 5 });
  });

  it("keeps a request sent twice twice: there is no de-duplication (§4 Idempotency, §6 'no dedup')", async () => {
    const g = ga4();
    await g.collect(body());
    await g.collect(body());
    expect(await g.kept()).toHaveLength(2);
  });

  it("forgets events, drops and registered pairs on reset, keeping the built-in pair", async () => {
    const g = ga4();
    await g.control("/secrets", { measurementId: "G-PORTAL7", apiSecret: "s3cret" });
    await g.collect(body());
    await g.collect("garbage");
    expect((await g.state()).dropped).not.toEqual([]);
    expect((await g.control("/reset")).status).toBe(204);
    expect(await g.state()).toEqual({ events: {}, dropped: [] });
    await g.collect(body(), "?measurement_id=G-PORTAL7&api_secret=s3cret");
    await g.collect(body());
    expect(Object.keys((await g.state()).events)).toEqual([SANDBOX_GA4.measurementId]);
  });

  it("refuses to register a pair that is not a G- measurement id and a secret", async () => {
    const g = ga4();
    expect((await g.control("/secrets", { measurementId: "12345", apiSecret: "s" })).status).toBe(400);
    expect((await g.control("/secrets", { measurementId: "G-OK1", apiSecret: "" })).status).toBe(400);
  });

  it("answers the injected outage, then 204 again", async () => {
    const g = ga4();
    await g.control("/fail", { times: 1, status: 503 });
    expect((await g.collect(body())).status).toBe(503);
    expect((await g.collect(body())).status).toBe(204);
    expect(await g.kept()).toHaveLength(1);
  });
});

describe("the GA4 sandbox's /debug/mp/collect answers validationMessages (l.52-74)", () => {
  it("answers the page's own example word for word for _badEventName (l.62-71)", async () => {
    const g = ga4();
    const res = await g.debug({ client_id: "1.2", events: [{ name: "_badEventName", params: {} }] });
    expect(res).toEqual({
      status: 200,
      messages: [{ fieldPath: "events", description: "Event at index: [0] has invalid name [_badEventName]. Names must start with an alphabetic character.", validationCode: "NAME_INVALID" }],
    });
  });

  it("answers no messages for a clean request and records nothing: validation events are not processed (l.56-59)", async () => {
    const g = ga4();
    expect(await g.debug(body({ timestamp_micros: MICROS - HOUR * 1000, validation_behavior: "ENFORCE_RECOMMENDATIONS" }))).toEqual({ status: 200, messages: [] });
    expect(await g.state()).toEqual({ events: {}, dropped: [] });
  });

  it("does not check the measurement_id/api_secret pair, as Google's validating-events page says, while /mp/collect drops it", async () => {
    const g = ga4();
    const wrong = "?measurement_id=G-NOSUCH&api_secret=nope";
    expect((await g.debug(body(), wrong)).messages).toEqual([]);
    await g.collect(body(), wrong);
    expect((await g.state()).events).toEqual({});
  });

  it.each([
    ["no client_id (l.22-23)", { events: [won] }, "client_id", "VALUE_REQUIRED"],
    ["no events (l.28)", { client_id: "1.2" }, "events", "VALUE_REQUIRED"],
    ["26 events (sending-events 'Limitations')", { client_id: "1.2", events: events(26) }, "events", "EXCEEDED_MAX_ENTITIES"],
    ["a 41-character event name (l.90)", body({ events: [{ name: `e${"x".repeat(40)}` }] }), "events", "NAME_INVALID"],
    ["an event name with a hyphen (sending-events 'Limitations')", body({ events: [{ name: "crm-won" }] }), "events", "NAME_INVALID"],
    ["the reserved session_start (l.45)", body({ events: [{ name: "session_start" }] }), "events", "NAME_RESERVED"],
    ["a reserved prefix", body({ events: [{ name: "google_sale" }] }), "events", "NAME_RESERVED"],
    ["26 parameters (l.91)", body({ events: [{ name: "crm_won", params: params(26) }] }), "events", "EXCEEDED_MAX_ENTITIES"],
    ["a 41-character parameter name (l.92)", body({ events: [{ name: "crm_won", params: { [`p${"x".repeat(40)}`]: 1 } }] }), "events", "NAME_INVALID"],
    ["a 101-character parameter value (l.93)", body({ events: [{ name: "crm_won", params: { note: "x".repeat(101) } }] }), "events", "VALUE_OUT_OF_BOUNDS"],
    ["an object as a parameter value", body({ events: [{ name: "crm_won", params: { note: { a: 1 } } }] }), "events", "VALUE_INVALID"],
    ["a currency that is no ISO 4217 code", body({ events: [{ name: "crm_won", params: { value: 1, currency: "rub" } }] }), "events", "VALUE_INVALID"],
    ["a timestamp_micros 72 hours and a microsecond old (l.84)", body({ timestamp_micros: MICROS - 72 * HOUR * 1000 - 1 }), "timestamp_micros", "VALUE_OUT_OF_BOUNDS"],
    ["a timestamp_micros in the future (l.84)", body({ timestamp_micros: MICROS + 1 }), "timestamp_micros", "VALUE_OUT_OF_BOUNDS"],
    ["26 user properties (l.94)", body({ user_properties: Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`u${i}`, { value: "v" }])) }), "user_properties", "EXCEEDED_MAX_ENTITIES"],
    ["a 37-character user property value (l.94)", body({ user_properties: { plan: { value: "v".repeat(37) } } }), "user_properties", "VALUE_OUT_OF_BOUNDS"],
    ["a 257-character user_id (l.95)", body({ user_id: "u".repeat(257) }), "user_id", "VALUE_OUT_OF_BOUNDS"],
  ])("answers a message for %s", async (_, payload, fieldPath, validationCode) => {
    const g = ga4();
    const { status, messages } = await g.debug(payload);
    expect(status).toBe(200);
    expect(messages).toEqual([expect.objectContaining({ fieldPath, validationCode })]);
    // Each message uses one of the documented codes (l.73-74) and says something.
    expect(messages[0]?.description).not.toBe("");
  });

  it("answers a message, not an HTTP error, for a body that is not JSON", async () => {
    const g = ga4();
    expect(await g.debug("not json{")).toEqual({ status: 200, messages: [expect.objectContaining({ validationCode: "VALUE_INVALID" })] });
  });
});

describe("the GA4 sandbox in the sandbox server", () => {
  it("serves /mp/collect, /debug/mp/collect and its control API at the root, beside the other stand-ins", async () => {
    const { app } = createSandbox();
    const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body()) };
    expect((await app.request(`/debug/mp/collect${QUERY}`, init)).status).toBe(200);
    expect((await app.request(`/mp/collect${QUERY}`, init)).status).toBe(204);
    const state = (await (await app.request("/_sandbox/ga4/events")).json()) as State;
    expect(state.events[SANDBOX_GA4.measurementId]).toHaveLength(1);
  });
});

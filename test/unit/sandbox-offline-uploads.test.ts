import { describe, expect, it } from "vitest";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../../sandbox/comagic/calls-report-row";
import { createDataApiSandbox } from "../../sandbox/comagic/data-api";
import type { OfflineUploadsSettings, StoredOfflineMessage } from "../../sandbox/comagic/offline-uploads";
import { createCoMagicRpcClient } from "../../worker/comagic/data-api";
import { uploadOfflineMessages, type OfflineMessageUpload } from "../../worker/comagic/offline-messages";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { readFormSubmission } from "../../worker/domain/form-submission";
import { offlineMessageOf } from "../../worker/domain/offline-message";

/*
 * The CoMagic offline-message stand-in (sandbox/comagic/offline-uploads.ts) must be as unkind as CoMagic: each test
 * names the line it holds the sandbox to, "l.N" of ../shared/reference/loop-docs/
 * data_api__communication__upload_offline_messages.txt, or a section of ../shared/reference/FACTS-loop.md.
 */

const KEY = "unit-test-key";
const START = Date.parse("2026-11-24T09:00:00Z");
const DAY = 86_400_000;
const SESSION = 9_161_005_360;
const SITE = 4021;

type Answer = { result?: { data: unknown; metadata: Record<string, unknown> }; error?: { code: number; message: string; data: Record<string, unknown> } };
type Control = { messages: StoredOfflineMessage[]; dropped: { ext_id: string | null; mnemonic: string }[]; settings: OfflineUploadsSettings };

async function sandbox(settings: Partial<OfflineUploadsSettings> | null = { enabled: true }) {
  const clock = START;
  const api = createDataApiSandbox({ now: () => clock });
  api.setSettings({ apiKeys: [KEY] });
  const post = (path: string, body: unknown) => api.app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const at = (ms = 0) => formatComagicDateTime(new Date(clock + ms), SANDBOX_ACCOUNT_TIME_ZONE);
  const s = {
    request: async (path: string, init?: RequestInit) => api.app.request(path, init),
    call: async (method: string, params: Record<string, unknown> = {}): Promise<Answer> =>
      (await post("/comagic/dataapi/v2.0", { jsonrpc: "2.0", id: 1, method, params: { access_token: KEY, ...params } })).json(),
    upload: (messages: unknown[]) => s.call("upload.offline_messages", { offline_messages: messages }),
    seed: (rows: Record<string, unknown[]>) => post("/_sandbox/comagic/data", rows),
    settings: (body: Partial<OfflineUploadsSettings>) => post("/_sandbox/comagic/offline-uploads/settings", body),
    control: async () => (await (await api.app.request("/_sandbox/comagic/offline-uploads")).json()) as Control,
    points: async () => ((await (await api.app.request("/_sandbox/comagic/stats")).json()) as { points: { total: number } }).points.total,
    report: async (fields = ["id", "communication_id", "date_time", "form_type", "form_name", "ext_id", "visitor_session_id", "site_id", "visitor_phone_number"]) =>
      (await s.call("get.offline_messages_report", { date_from: at(-30 * DAY), date_till: at(), fields })).result?.data as Record<string, unknown>[],
    /** An account wall-clock time `ms` from now. */
    at,
  };
  // A visitor session that began two hours ago on SITE (get.visitor_sessions_report's row).
  await s.seed({ visitor_sessions: [{ id: SESSION, date_time: at(-2 * 3_600_000), site_id: SITE, campaign_id: 77, visitor_id: 555, person_id: 556 }] });
  if (settings) await s.settings(settings);
  return s;
}

/** A message as the worker builds it: a session, a phone in E.164 digits, a time an hour ago. */
function msg(at: (ms?: number) => string, extId: string, overrides: Record<string, unknown> = {}) {
  return { date_time: at(-3_600_000), name: "Anna", phone: "79123456789", visitor_session_id: SESSION, form_name: "callback", ext_id: extId, ...overrides };
}

const mnemonic = (a: Answer) => a.error?.data.mnemonic;

describe("what the CoMagic admin must switch on first (l.10)", () => {
  it("refuses with -32008 method_component_disabled until «Загрузка офлайн-заявок из внешней системы» is on", async () => {
    const s = await sandbox(null);
    const refused = await s.upload([msg(s.at, "form-1")]);
    expect(refused.error?.code).toBe(-32008);
    expect(mnemonic(refused)).toBe("method_component_disabled");
    expect(JSON.stringify(refused.error)).toContain("Загрузка офлайн-заявок из внешней системы");
    await s.settings({ enabled: true });
    expect((await s.upload([msg(s.at, "form-1")])).result?.data).toEqual([{ id: expect.any(Number) }]);
  });
});

describe("upload.offline_messages (l.11-37, FACTS-loop §2, §6)", () => {
  it("answers one {id} per message (l.79-93) and shows each in get.offline_messages_report as form_type DataAPI (FACTS-loop §2)", async () => {
    const s = await sandbox();
    const answer = await s.upload([msg(s.at, "form-1"), msg(s.at, "form-2", { phone: undefined, email: "anna@example.ru", visitor_session_id: undefined, site_id: SITE })]);
    const ids = ((answer.result?.data ?? []) as { id: number }[]).map((d) => d.id);
    expect(ids).toHaveLength(2);
    const rows = await s.report();
    expect(rows.map((r) => [r.id, r.ext_id, r.form_type, r.form_name, r.site_id])).toEqual([
      [ids[0], "form-1", "DataAPI", "callback", SITE],
      [ids[1], "form-2", "DataAPI", "callback", SITE],
    ]);
    // FACTS-loop §1.5: the returned id is the request's, not the communication_id a deal links to.
    expect(rows[0]?.communication_id).not.toBe(ids[0]);
    expect(rows[0]?.visitor_session_id).toBe(SESSION);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["neither phone nor email (l.15)", { phone: undefined }, "required_parameter_missed"],
    ["none of visitor_session_id, campaign_id, site_id (l.14)", { visitor_session_id: undefined }, "required_parameter_missed"],
    ["a phone not in E.164 (l.28)", { phone: "8 (912) 345-67-89" }, "invalid_parameter_value"],
    ["an email that is no address", { phone: undefined, email: "anna at example" }, "invalid_parameter_value"],
    ["a date_time in the future (l.24 'Не может быть в будущем')", { date_time: "in the future" }, "invalid_date_time"],
    // A site, not a session: only the date's own rule can refuse these.
    ["a date_time not 'YYYY-MM-DD hh:mm:ss' (l.24)", { date_time: "2026-11-24T10:00:00Z", visitor_session_id: undefined, site_id: SITE }, "invalid_date_time"],
    ["a date_time that is no day (l.24)", { date_time: "2026-02-30 10:00:00", visitor_session_id: undefined, site_id: SITE }, "invalid_date_time"],
    ["a date_time before the session began (l.25 'больше чем у переданной сессии')", { date_time: "before the session" }, "invalid_date_time"],
    ["a date_time equal to the session's start (l.25: strictly after)", { date_time: "at the session" }, "invalid_date_time"],
    ["a visitor_session_id the account does not have (data_api.txt:265)", { visitor_session_id: 1 }, "entity_not_found"],
    ["a visitor_session_id given as a string (l.31: number)", { visitor_session_id: String(SESSION) }, "data_type_error"],
    ["a site_id other than the session's (l.14 'данные должны быть консистентные')", { site_id: SITE + 1 }, "invalid_parameters_combination"],
    ["a campaign_id other than the session's (l.14)", { campaign_id: 78 }, "invalid_parameters_combination"],
    ["campaign_id -1 without site_id (l.32)", { visitor_session_id: undefined, campaign_id: -1 }, "required_parameter_missed"],
    ["a source_id the account does not have (l.33 'только неудаленный источник')", { source_id: 5 }, "entity_not_found"],
    ["user fields never created (l.37 create.offline_message_user_field first)", { user_fields: [{ ext_id: "order", value: "1" }] }, "entity_not_found"],
    ["a field the method does not have (l.51-71)", { comment: "hi" }, "unexpected_parameters"],
  ])("refuses a message with %s", async (_name, overrides, expected) => {
    const s = await sandbox();
    const times: Record<string, string> = { "in the future": s.at(60_000), "before the session": s.at(-3 * 3_600_000), "at the session": s.at(-2 * 3_600_000) };
    const date = overrides.date_time;
    const message = { ...msg(s.at, "form-1"), ...overrides, ...(typeof date === "string" && date in times ? { date_time: times[date] } : {}) };
    expect(mnemonic(await s.upload([message]))).toBe(expected);
    expect((await s.control()).messages).toEqual([]);
  });

  it("refuses a session created more than 180 days before date_time (l.31), and takes one just inside", async () => {
    const s = await sandbox();
    await s.seed({ visitor_sessions: [{ id: 1001, date_time: s.at(-182 * DAY), site_id: SITE }] });
    expect(mnemonic(await s.upload([msg(s.at, "old", { visitor_session_id: 1001, date_time: s.at(-DAY) })]))).toBe("invalid_parameter_value");
    expect((await s.upload([msg(s.at, "ok", { visitor_session_id: 1001, date_time: s.at(-2 * DAY - 60_000) })])).error).toBeUndefined();
  });

  it("refuses a site the account does not have once the sandbox is given its sites (l.34)", async () => {
    const s = await sandbox({ enabled: true, siteIds: [SITE] });
    expect(mnemonic(await s.upload([msg(s.at, "form-1", { visitor_session_id: undefined, site_id: SITE + 1 })]))).toBe("entity_not_found");
    expect((await s.upload([msg(s.at, "form-1", { visitor_session_id: undefined, site_id: SITE })])).error).toBeUndefined();
  });

  it("takes the time of the call when date_time is left out (l.26, though the table marks it required)", async () => {
    const s = await sandbox();
    await s.upload([msg(s.at, "form-1", { date_time: undefined })]);
    expect((await s.control()).messages[0]?.date_time).toBe(s.at());
  });

  it("refuses more than 50 messages in one request (l.11, l.23), and an empty list, and takes 50", async () => {
    const s = await sandbox();
    const many = Array.from({ length: 51 }, (_, i) => msg(s.at, `form-${i}`));
    expect(mnemonic(await s.upload(many))).toBe("data_limit_exceeded");
    expect((await s.upload(many.slice(0, 50))).result?.data).toHaveLength(50);
    // l.23 "да": an empty list is no list.
    expect(mnemonic(await s.upload([]))).toBe("invalid_parameter_value");
  });

  it("fails the whole request for one invalid message by default and stores none (FACTS-loop §2 [UNCERTAIN], §8.1)", async () => {
    const s = await sandbox();
    const answer = await s.upload([msg(s.at, "form-1"), msg(s.at, "form-2", { phone: "12" }), msg(s.at, "form-3")]);
    expect(mnemonic(answer)).toBe("invalid_parameter_value");
    // The answer names no message (l.79-93 has nothing per message), so a client must find the bad one itself.
    expect(JSON.stringify(answer.error)).not.toMatch(/offline_messages\.\d|\[1\]/);
    expect((await s.control()).messages).toEqual([]);
  });

  it("with batchFailure drop_invalid, stores the valid messages and answers only their ids, saying nothing of the other (§8.1)", async () => {
    const s = await sandbox({ enabled: true, batchFailure: "drop_invalid" });
    const answer = await s.upload([msg(s.at, "form-1"), msg(s.at, "form-2", { phone: "12" }), msg(s.at, "form-3")]);
    expect(answer.result?.data).toHaveLength(2);
    const control = await s.control();
    expect(control.messages.map((m) => m.ext_id)).toEqual(["form-1", "form-3"]);
    expect(control.dropped).toEqual([{ ext_id: "form-2", mnemonic: "invalid_parameter_value", field: "offline_messages.phone" }]);
    // Refusals of the request itself still fail it (l.11).
    expect(mnemonic(await s.upload(Array.from({ length: 51 }, (_, i) => msg(s.at, `f${i}`))))).toBe("data_limit_exceeded");
  });

  it("stores a message sent twice with one ext_id twice by default, and once with duplicates: ignore (FACTS-loop §6 2)", async () => {
    const accepting = await sandbox();
    const [first, second] = [await accepting.upload([msg(accepting.at, "form-1")]), await accepting.upload([msg(accepting.at, "form-1")])];
    expect(first.result?.data).not.toEqual(second.result?.data);
    expect(await accepting.report()).toHaveLength(2);

    const ignoring = await sandbox({ enabled: true, duplicates: "ignore" });
    const once = await ignoring.upload([msg(ignoring.at, "form-1")]);
    expect((await ignoring.upload([msg(ignoring.at, "form-1"), msg(ignoring.at, "form-2")])).result?.data).toEqual([...((once.result?.data ?? []) as unknown[]), { id: expect.any(Number) }]);
    expect((await ignoring.report()).map((r) => r.ext_id)).toEqual(["form-1", "form-2"]);
  });

  it("charges one point per successful request whatever its size, none for a refused one (data_api.txt:129,150)", async () => {
    const s = await sandbox();
    const before = await s.points();
    await s.upload(Array.from({ length: 50 }, (_, i) => msg(s.at, `form-${i}`)));
    await s.upload([msg(s.at, "bad", { phone: undefined })]);
    expect((await s.points()) - before).toBe(1);
  });

  it("forgets what was uploaded, and the component, on the sandbox reset", async () => {
    const s = await sandbox({ enabled: true, duplicates: "ignore" });
    await s.upload([msg(s.at, "form-1")]);
    await s.request("/_sandbox/comagic/reset", { method: "POST" });
    expect(await s.control()).toMatchObject({ messages: [], settings: { enabled: false, duplicates: "accept", batchFailure: "whole" } });
  });
});

describe("worker/comagic/offline-messages.ts against the sandbox (FACTS-loop §2, §8.1)", () => {
  async function client(settings: Partial<OfflineUploadsSettings> = { enabled: true }) {
    const s = await sandbox(settings);
    let clock = START;
    const api = createCoMagicRpcClient({
      url: "https://sandbox.test/comagic/dataapi/v2.0",
      auth: { kind: "key", token: KEY },
      tokens: { get: async () => null, put: async () => undefined, delete: async () => undefined },
      api: "Data API",
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => s.request(new URL(String(input)).pathname, init)) as typeof fetch,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    return { s, api };
  }

  /**
   * Forms as the worker holds them (readFormSubmission), made into uploads by offlineMessageOf; those `unknownSession`
   * picks carry a session id the account does not have, which only CoMagic can tell.
   */
  function forms(count: number, unknownSession: (i: number) => boolean = () => false): OfflineMessageUpload[] {
    return Array.from({ length: count }, (_, i) => {
      const posted = { phone: `+7 912 ${String(i).padStart(7, "0")}`, comagic_session_id: unknownSession(i) ? "123" : String(SESSION), form_name: "callback" };
      const read = readFormSubmission(posted, { key: `form-${i}`, receivedAt: new Date(START - 3_600_000), defaultRegion: "RU" });
      if (!read.ok) throw new Error("the test's form is invalid");
      const built = offlineMessageOf(read.event, { siteId: null, timeZone: SANDBOX_ACCOUNT_TIME_ZONE }, START);
      if (!built.ok) throw new Error(built.reason);
      return { key: read.event.key, message: built.message };
    });
  }

  it("uploads forms built by offlineMessageOf in requests of 50, each with the id CoMagic stored it under (l.11, l.79-93)", async () => {
    const { s, api } = await client();
    const result = await uploadOfflineMessages(api, forms(120));
    expect(result).toMatchObject({ rejected: [], pending: [], error: null, requests: 3 });
    const rows = await s.report(["id", "ext_id", "visitor_phone_number", "visitor_session_id"]);
    expect(result.sent.map((m) => [m.key, m.id])).toEqual(rows.map((r) => [r.ext_id, r.id]));
    expect(rows[0]).toMatchObject({ visitor_phone_number: "79120000000", visitor_session_id: SESSION });
  });

  it("finds the one message refused among 50 and sends the other 49 (whole-request failure, the default reading)", async () => {
    const { s, api } = await client();
    const result = await uploadOfflineMessages(
      api,
      forms(50, (i) => i === 17),
    );
    expect(result.rejected).toEqual([{ key: "form-17", mnemonic: "entity_not_found", reason: expect.stringContaining("entity_not_found") }]);
    expect(result.sent).toHaveLength(49);
    expect((await s.control()).messages.map((m) => m.ext_id)).not.toContain("form-17");
    expect(result.requests).toBeLessThanOrEqual(13);
  });

  it("under drop_invalid, sends nothing twice: a batch answered with too few ids is unconfirmed, a lone message without one dropped", async () => {
    const { s, api } = await client({ enabled: true, batchFailure: "drop_invalid" });
    const batch = await uploadOfflineMessages(
      api,
      forms(3, (i) => i === 1),
    );
    expect(batch.requests).toBe(1);
    expect(batch.rejected.map((r) => [r.key, r.mnemonic])).toEqual([
      ["form-0", "unconfirmed"],
      ["form-1", "unconfirmed"],
      ["form-2", "unconfirmed"],
    ]);
    expect((await s.control()).messages.map((m) => m.ext_id)).toEqual(["form-0", "form-2"]);
    const lone = await uploadOfflineMessages(
      api,
      forms(1, () => true),
    );
    expect(lone.rejected).toEqual([{ key: "form-0", mnemonic: "dropped", reason: expect.any(String) }]);
  });

  it("stops when the component is off and returns every message as pending (l.10)", async () => {
    const { api } = await client({ enabled: false });
    const result = await uploadOfflineMessages(api, forms(60));
    expect(result.error?.mnemonic).toBe("method_component_disabled");
    expect(result.pending).toHaveLength(60);
    expect(result.requests).toBe(1);
  });
});

import { describe, expect, it } from "vitest";
import { CoMagicDeferredError, CoMagicError, type CoMagicRpcClient, type RpcResult } from "../../worker/comagic/data-api";
import { uploadOfflineMessages, type OfflineMessageUpload } from "../../worker/comagic/offline-messages";
import { readFormSubmission } from "../../worker/domain/form-submission";
import { offlineMessageOf, type FormLead } from "../../worker/domain/offline-message";

/*
 * worker/comagic/offline-messages.ts against a scripted CoMagic (both readings of a bad message, FACTS-loop §2 and
 * §8.1), and worker/domain/offline-message.ts, which builds each message from what the worker keeps of a form
 * (loop-docs/data_api__communication__upload_offline_messages.txt, "l.N"). The sandbox's own rules are held in
 * sandbox-offline-uploads.test.ts.
 */

type Sent = Record<string, unknown>[];

/**
 * A CoMagic that answers each request with `answer` (the messages sent; throw to refuse), numbering stored messages
 * from 1000. It records what each request carried.
 */
function scripted(answer: (messages: Sent) => RpcResult | "ids") {
  const requests: Sent[] = [];
  let next = 1000;
  const client: CoMagicRpcClient = {
    loginCount: 0,
    async call(method, params = {}) {
      expect(method).toBe("upload.offline_messages");
      const messages = params.offline_messages as Sent;
      requests.push(messages);
      const reply = answer(messages);
      return reply === "ids" ? { data: messages.map(() => ({ id: next++ })), metadata: {} } : reply;
    },
  };
  return { client, requests };
}

const upload = (key: string, overrides: Record<string, unknown> = {}): OfflineMessageUpload => ({
  key,
  message: { date_time: "2026-11-24 11:00:00", phone: "79123456789", visitor_session_id: 9_161_005_360, ext_id: key, ...overrides },
});
const keys = (n: number) => Array.from({ length: n }, (_, i) => upload(`form-${i}`));
const refuse = (mnemonic: string) => new CoMagicError(mnemonic, `CoMagic Data API upload.offline_messages: ${mnemonic}`, false);

describe("uploadOfflineMessages", () => {
  it("sends at most 50 messages a request (l.11), each with its key as ext_id, and pairs the answer's ids with them in order", async () => {
    const { client, requests } = scripted(() => "ids");
    const result = await uploadOfflineMessages(client, [...keys(119), upload("form-119", { ext_id: "something else" })], 80);
    expect(requests.map((r) => r.length)).toEqual([50, 50, 20]);
    expect(requests.flat().map((m) => m.ext_id)).toEqual(keys(120).map((m) => m.key));
    expect(result.sent.slice(0, 2)).toEqual([
      { key: "form-0", id: 1000 },
      { key: "form-1", id: 1001 },
    ]);
    expect(result).toMatchObject({ rejected: [], pending: [], error: null, requests: 3 });
  });

  it("splits a refused batch until the bad message stands alone, and sends the rest (whole-request failure)", async () => {
    const { client, requests } = scripted((messages) => {
      if (messages.some((m) => m.ext_id === "form-5")) throw refuse("invalid_date_time");
      return { data: messages.map((_, i) => ({ id: i })), metadata: {} };
    });
    const result = await uploadOfflineMessages(client, keys(8));
    expect(result.rejected).toEqual([{ key: "form-5", mnemonic: "invalid_date_time", reason: expect.stringContaining("invalid_date_time") }]);
    expect(result.sent.map((m) => m.key).sort()).toEqual(["form-0", "form-1", "form-2", "form-3", "form-4", "form-6", "form-7"]);
    // Depth first: 8 → 4 (sent) + 4 → 2 → 1 (sent) + 1 (the bad one), then its sibling 2 (sent): no good message twice.
    expect(requests.map((r) => r.length)).toEqual([8, 4, 4, 2, 1, 1, 2]);
  });

  it.each([
    ["the component is off (l.10)", refuse("method_component_disabled")],
    ["the points are spent", new CoMagicDeferredError("limit_exceeded", "Limit per day has been exceeded", 3600, "day")],
    ["the network failed", new TypeError("fetch failed")],
  ])("stops when %s, returning what was not sent as pending", async (_name, failure) => {
    let calls = 0;
    const { client } = scripted((messages) => {
      calls += 1;
      if (calls === 2) throw failure;
      return { data: messages.map((_, i) => ({ id: i })), metadata: {} };
    });
    const result = await uploadOfflineMessages(client, keys(120));
    expect(result.sent).toHaveLength(50);
    expect(result.pending).toEqual(
      keys(120)
        .slice(50)
        .map((m) => m.key),
    );
    expect(result.error).toBeInstanceOf(CoMagicError);
    expect(result.requests).toBe(2);
  });

  it("never re-sends a batch answered with fewer ids than messages: each is unconfirmed (drop_invalid reading)", async () => {
    const { client, requests } = scripted((messages) => ({ data: messages.slice(1).map((_, i) => ({ id: i })), metadata: {} }));
    const result = await uploadOfflineMessages(client, keys(3));
    expect(requests).toHaveLength(1);
    expect(result.sent).toEqual([]);
    expect(result.rejected.map((r) => [r.key, r.mnemonic])).toEqual([
      ["form-0", "unconfirmed"],
      ["form-1", "unconfirmed"],
      ["form-2", "unconfirmed"],
    ]);
  });

  it("rejects a lone message answered without an id as dropped, and one answered unreadably as unconfirmed", async () => {
    expect((await uploadOfflineMessages(scripted(() => ({ data: [], metadata: {} })).client, keys(1))).rejected).toEqual([{ key: "form-0", mnemonic: "dropped", reason: expect.any(String) }]);
    expect((await uploadOfflineMessages(scripted(() => ({ data: {}, metadata: {} })).client, keys(1))).rejected).toMatchObject([{ key: "form-0", mnemonic: "unconfirmed" }]);
  });
});

describe("offlineMessageOf", () => {
  const NOW = Date.parse("2026-11-24T09:00:00Z");
  const SETTINGS = { siteId: 4021, timeZone: "Europe/Moscow" };

  /** A form as the worker keeps it: readFormSubmission of what the snippet posts. */
  function form(fields: Record<string, string>, receivedAt = NOW - 60_000): FormLead {
    const read = readFormSubmission(fields, { key: "form-0123abcd", receivedAt: new Date(receivedAt), defaultRegion: "RU" });
    if (!read.ok) throw new Error("the test's form is invalid");
    return read.event;
  }

  it("builds the message from the snippet's session id, an E.164 phone in CoMagic's digits and the account's wall clock (l.24-35)", () => {
    const posted = { name: "Anna", phone: "8 (912) 345-67-89", message: "Call me", form_name: "callback", comagic_session_id: "9161005360", comagic_visitor_id: "17258569" };
    expect(offlineMessageOf(form(posted), SETTINGS, NOW)).toEqual({
      ok: true,
      message: { date_time: "2026-11-24 11:59:00", name: "Anna", phone: "79123456789", message: "Call me", form_name: "callback", visitor_session_id: 9_161_005_360, ext_id: "form-0123abcd" },
    });
  });

  it("falls back to the portal's site when the form has no usable session id, never sending both (l.14)", () => {
    for (const comagic_session_id of [undefined, "", "undefined", "0", "12.5", "9999999999999999", "99999999999999999999"]) {
      const fields: Record<string, string> = { email: "Anna@Example.ru", ...(comagic_session_id === undefined ? {} : { comagic_session_id }) };
      expect(offlineMessageOf(form(fields), SETTINGS, NOW)).toEqual({ ok: true, message: { date_time: "2026-11-24 11:59:00", email: "anna@example.ru", site_id: 4021, ext_id: "form-0123abcd" } });
    }
  });

  it("puts a form received after `now` (another isolate's clock) at `now`, never in the future (l.24)", () => {
    const built = offlineMessageOf(form({ phone: "+79123456789" }, NOW + 5_000), SETTINGS, NOW);
    expect(built.ok && built.message.date_time).toBe("2026-11-24 12:00:00");
  });

  it.each([
    ["no_contact", "no phone or email it can send (l.15)", { ...form({ email: "a@example.ru" }), email: null }, SETTINGS],
    ["no_contact", "a phone that is not a number after all, and no email (l.28)", { ...form({ phone: "+79123456789" }), phone: "+7000" }, SETTINGS],
    ["no_session_or_site", "neither a session id nor a site configured (l.14)", form({ phone: "+79123456789" }), { ...SETTINGS, siteId: null }],
    ["too_old", "a form received more than 180 days ago", form({ phone: "+79123456789" }, NOW - 181 * 86_400_000), SETTINGS],
  ])("refuses with %s: %s", (reason, _name, lead, settings) => {
    expect(offlineMessageOf(lead, settings, NOW)).toEqual({ ok: false, reason });
  });
});

import { beforeAll, describe, expect, it } from "vitest";
import { hmacHex, leadsWithPhone, makeCallSession, makeChatSession, postWebhook, sandbox, sandboxLeads, SECRET, uniquePhone, uniqueSessionId, waitFor, waitForQuiet } from "./support";

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

describe("POST /webhooks/comagic accepts", () => {
  it("a call with the right token and answers 202 with the session id", async () => {
    const body = makeCallSession();
    const res = await postWebhook(body);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ status: "accepted", id: String(body.call_session.id) });
  });

  it("the previous token while a rotated one is configured", async () => {
    const res = await postWebhook(makeCallSession(), { token: "test-token-old" });
    expect(res.status).toBe(202);
  });

  it("a signed call without a token", async () => {
    const res = await postWebhook(makeCallSession(), { token: null, signWith: SECRET });
    expect(res.status).toBe(202);
  });

  it("a call with both a right token and a right signature", async () => {
    const res = await postWebhook(makeCallSession(), { signWith: SECRET });
    expect(res.status).toBe(202);
  });

  it("a body whatever its Content-Type says, since CoMagic templates set none reliably", async () => {
    const res = await postWebhook(makeCallSession(), { contentType: "text/plain" });
    expect(res.status).toBe(202);
  });

  it("the flat template from docs/ with numbers as strings and tags as one string", async () => {
    const phone = uniquePhone();
    const res = await postWebhook({
      event_type: "call_session_completed",
      call_session_id: "4000123456",
      contact_phone_number: phone.e164.slice(1),
      talk_time_duration: "42",
      total_time_duration: "57",
      wait_time_duration: "15",
      employee_full_name: "Ivan Petrov",
      tag_names: "target, repeat",
      visitor_id: null,
      utm_source: "google",
      utm_medium: null,
      utm_campaign: null,
      utm_content: null,
      utm_term: null,
      site_domain_name: "shop.example.ru",
      file_link: null,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ status: "accepted", id: "4000123456" });
  });

  it("a lost call that waited long enough to be a real customer", async () => {
    const res = await postWebhook(makeCallSession({ is_lost_call: true, duration_total: 12 }));
    expect(res.status).toBe(202);
  });
});

describe("POST /webhooks/comagic ignores with 200, so CoMagic does not retry", () => {
  it.each([
    ["a lost 5-second call", makeCallSession({ is_lost_call: true, duration_total: 5 }), "untargeted_call"],
    ["a call from a number that is not a phone number", makeCallSession({ visitor_phone_number: "12345" }), "unparseable_phone"],
    ["a chat with neither phone nor email", makeChatSession(), "no_contact"],
    // FACTS-calls §3.3: `direction` is in/out; `is_internal` a separate variable.
    ["a call whose caller hid the number", makeCallSession({ visitor_phone_number: undefined }), "hidden_number"],
    ["an outbound call of the call-finished template", { call_session_id: 11, contact_phone_number: "79123456789", direction: "out", talk_time_duration: 30 }, "outbound_call"],
    ["an internal call", { call_session_id: 12, contact_phone_number: "79123456789", direction: "in", is_internal: true }, "internal_call"],
    ["a hidden number CoMagic left as its placeholder", { call_session_id: 13, contact_phone_number: "{{contact_phone_number}}", direction: "in" }, "hidden_number"],
  ])("%s", async (_name, body, reason) => {
    const res = await postWebhook(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ignored", reason });
  });

  // samples/notifications_templates_collected.md §6: substitution is undocumented; a variable the event lacks may stay unreplaced.
  it("accepts the call-finished template with a variable CoMagic left unreplaced, unquoted (not valid JSON as sent)", async () => {
    const phone = uniquePhone();
    const raw = `{"call_session_id": ${uniqueSessionId()}, "contact_phone_number": "${phone.e164.slice(1)}", "direction": "in", "employee_id": {{employee_id}}, "talk_time_duration": 40, "tag_names": }`;
    const res = await postWebhook(raw);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: "accepted" });
  });

  it("an event type it does not handle", async () => {
    const res = await postWebhook({ event_type: "call_recording_ready", call_session_id: 1 });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ignored" });
  });
});

describe("POST /webhooks/comagic refuses", () => {
  const phone = uniquePhone();
  const body = makeCallSession({ visitor_phone_number: phone.local });

  const refusals: [string, Parameters<typeof postWebhook>[1]][] = [
    ["no token and no signature", { token: null }],
    ["a wrong token", { token: "guess" }],
    ["a wrong signature and no token", { token: null, signature: "0".repeat(64) }],
    ["a right token with a wrong signature", { signature: "f".repeat(64) }],
    ["a signature made with another secret", { token: null, signWith: "other-secret" }],
    ["a signature that is not hex", { token: null, signature: "not-a-signature" }],
  ];

  it.each(refusals)("%s with one 401 body", async (_name, options) => {
    const res = await postWebhook(body, options);
    expect(res.status).toBe(401);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ error: "unauthorized", message: "Missing or invalid webhook token or signature" });
  });

  it("and writes nothing for any of them, while the same call sent right becomes a lead", async () => {
    const refused = uniquePhone();
    for (const [, options] of refusals) expect((await postWebhook(makeCallSession({ visitor_phone_number: refused.local }), options)).status).toBe(401);
    const control = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: control.local }))).status).toBe(202);
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), control.e164).length > 0, "the control lead");
    await waitForQuiet();
    expect(leadsWithPhone(await sandboxLeads(), refused.e164)).toEqual([]);
  });

  it("a signature over a different body", async () => {
    const signature = await hmacHex(JSON.stringify(makeCallSession()), SECRET);
    const res = await postWebhook(body, { token: null, signature });
    expect(res.status).toBe(401);
  });

  it("a body that is not JSON, with 400", async () => {
    const res = await postWebhook("{not json");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_json" });
  });

  it("JSON that is not a session, with 400 and the field paths", async () => {
    const res = await postWebhook({ hello: "world" });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; issues: { path: string }[] };
    expect(answer.error).toBe("invalid_body");
    expect(answer.issues.map((i) => i.path)).toContain("call_session");
  });

  it("a duration that is not a number, naming the field", async () => {
    const res = await postWebhook(makeCallSession({ duration_total: "long" }));
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { issues: { path: string }[] };
    expect(answer.issues.map((i) => i.path)).toContain("call_session.duration_total");
  });

  it("a body above 64 KiB, with 413", async () => {
    const res = await postWebhook(makeCallSession({ padding: "x".repeat(65 * 1024) }));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "body_too_large" });
  });

  it("unknown paths with a JSON 404", async () => {
    const { exports } = await import("cloudflare:workers");
    const missing = await exports.default.fetch("http://worker.test/webhooks/other");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "not_found" });
  });
});

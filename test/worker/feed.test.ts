import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { callsReportRow } from "../../sandbox/comagic/calls-report-row";
import worker from "../../worker/index";
import { d1FeedState } from "../../worker/storage/feed-state";
import {
  adminHealth,
  comagicStats,
  comagicTime,
  visitorSessions,
  leadsWithPhone,
  postWebhook,
  sandbox,
  sandboxLeads,
  uniquePhone,
  uniqueSessionId,
  waitFor,
  waitForQuiet,
  type SandboxLead,
} from "./support";

/*
 * The CoMagic feed (jobs/feed.ts): every call, chat and request CoMagic's reports have becomes a lead once, however
 * often it is seen. Report rows as the Data API documents them (comagic/docs/data_api__report__get_chats_report.txt,
 * …get_offline_messages_report.txt, …get_chat_messages_report.txt, …person__get_visitors.txt), served by the sandbox.
 */

const state = () => d1FeedState(env.DB as D1Database, "default");
const ago = (minutes: number) => comagicTime(new Date(Date.now() - minutes * 60_000));
let chatId = 810_000 + Math.floor(Math.random() * 100_000);
let visitor = 7_900_000 + Math.floor(Math.random() * 90_000);

/**
 * One cron run whose feed is due (the last read forgotten), as FEED_INTERVAL_MINUTES after the last one: the cron
 * queues the portal's tick, and the enrichment queue's consumer reads the feed.
 */
async function cronRun(): Promise<Awaited<ReturnType<ReturnType<typeof state>["get"]>>> {
  await state().put({ ...(await state().get()), lastRunAt: null });
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env);
  return waitFor(async () => {
    const after = await state().get();
    return after.lastRunAt ? after : null;
  }, "the portal's tick");
}

async function feedRun(): Promise<Record<string, unknown>> {
  const after = await cronRun();
  expect(after.lastError).toBeNull();
  return after.lastReport ?? {};
}

function whatsAppChat(phone: string, overrides: Record<string, unknown> = {}) {
  chatId += 1;
  return {
    id: chatId,
    status: "succeed",
    initiator: "visitor",
    date_time: ago(20),
    chat_channel_type: "whatsapp",
    chat_channel_name: "WhatsApp магазина",
    is_group_chat: false,
    visitor_phone_number: Number(phone.slice(1)),
    visitor_id: null,
    employee_id: 25,
    employee_full_name: "Ivan Admin",
    ...overrides,
  };
}
const message = (chat: number, minutesAgo: number, source: string, text: string) => ({
  id: chat * 10 + minutesAgo,
  chat_id: chat,
  date_time: ago(minutesAgo),
  source,
  text,
  employee_full_name: source === "operator" ? "Ivan Admin" : null,
});
const leadsWithEmail = (leads: SandboxLead[], email: string) => leads.filter((l) => l.EMAIL?.some((e) => e.VALUE === email));

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});
beforeEach(async () => {
  // Each test reads only its own rows.
  await sandbox("/_sandbox/comagic/reset", {});
  await state().put({ cursor: null, lastRunAt: null, lastSuccessAt: null, lastReport: null, lastError: null, lastCallsSeenAt: null });
});

describe("the CoMagic feed", () => {
  it("finds a WhatsApp chat, a site chat with a typed email, a request and a call whose notification was lost, each once", async () => {
    const whatsapp = uniquePhone();
    const chat = whatsAppChat(whatsapp.e164);
    visitor += 1;
    const email = `chat${visitor}@example.ru`;
    chatId += 1;
    const siteChat = { ...whatsAppChat(whatsapp.e164), id: chatId, chat_channel_type: "comagic", chat_channel_name: "Сайт", visitor_phone_number: null, visitor_id: visitor };
    const requester = uniquePhone();
    const request = {
      id: uniqueSessionId(),
      date_time: ago(15),
      form_name: "Обратный звонок",
      form_type: "Стандартная",
      text: "Перезвоните после 18:00",
      visitor_phone_number: requester.e164.slice(1),
      visitor_name: "Пётр",
      visitor_id: null,
    };
    const caller = uniquePhone();
    const call = callsReportRow({ id: uniqueSessionId(), phone: caller.e164.slice(1), visitorId: null, startedAt: new Date(Date.now() - 25 * 60_000) });
    await sandbox("/_sandbox/comagic/data", {
      calls: [call],
      chats: [chat, siteChat],
      chat_messages: [message(chat.id, 20, "chat_channel", "Есть ли диван в наличии?"), message(chat.id, 19, "operator", "Да, есть."), message(siteChat.id, 18, "form_text", email)],
      offline_messages: [request],
      visitors: [{ id: visitor, name: "Анна", emails: [email], phones: [] }],
    });
    const before = (await comagicStats()).methods;

    const report = await feedRun();
    expect(report).toMatchObject({ calls: 1, chats: 2, requests: 1, targeted: 4, enqueued: 4 });
    const read = (await comagicStats()).methods;
    // Five reads for everything: the three reports, the chats' messages and the site chat's visitor.
    for (const method of ["get.calls_report", "get.chats_report", "get.offline_messages_report", "get.chat_messages_report", "get.visitors"]) {
      expect((read[method] ?? 0) - (before[method] ?? 0)).toBe(1);
    }
    const leads = await waitFor(async () => {
      const all = await sandboxLeads();
      const found = [leadsWithPhone(all, whatsapp.e164), leadsWithEmail(all, email), leadsWithPhone(all, requester.e164), leadsWithPhone(all, caller.e164)];
      return found.every((f) => f.length > 0) ? found : null;
    }, "four leads");
    const [chatLead, siteLead, requestLead, callLead] = leads.map((l) => l[0] as SandboxLead);
    expect(chatLead?.TITLE).toContain("WhatsApp");
    expect(String(chatLead?.COMMENTS)).toContain("Есть ли диван в наличии?");
    expect(siteLead?.NAME).toBe("Анна");
    expect(requestLead?.TITLE).toContain("Обратный звонок");
    expect(String(requestLead?.COMMENTS)).toContain("Перезвоните после 18:00");
    expect(callLead?.ORIGIN_ID).toBe(String(call.id));

    // The call's report row is its record: no record read follows for it.
    await waitForQuiet();
    const settled = (await comagicStats()).methods;
    expect((settled["get.calls_report"] ?? 0) - (before["get.calls_report"] ?? 0)).toBe(1);

    // Read again (the overlap reaches back): nothing new, and nothing read but the three reports.
    expect(await feedRun()).toMatchObject({ targeted: 4, enqueued: 0 });
    const again = (await comagicStats()).methods;
    for (const method of ["get.chat_messages_report", "get.visitors"]) expect((again[method] ?? 0) - (settled[method] ?? 0)).toBe(0);
    const all = await sandboxLeads();
    expect([leadsWithPhone(all, whatsapp.e164), leadsWithEmail(all, email), leadsWithPhone(all, requester.e164), leadsWithPhone(all, caller.e164)].map((l) => l.length)).toEqual([1, 1, 1, 1]);
  });

  it("makes one lead of a chat notified and then read by the feed, and lands a later call from that phone on it", async () => {
    const phone = uniquePhone();
    const chat = whatsAppChat(phone.e164);
    expect((await postWebhook({ event_type: "chat_session_completed", chat_session: { id: chat.id, visitor_phone_number: phone.local, visitor_name: "Анна" } })).status).toBe(202);
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164).length > 0, "the notified chat's lead");
    await sandbox("/_sandbox/comagic/data", { chats: [chat], chat_messages: [message(chat.id, 20, "chat_channel", "Здравствуйте")] });
    expect(await feedRun()).toMatchObject({ chats: 1, enqueued: 0 });

    expect(
      (await postWebhook({ event_type: "call_session_completed", call_session_id: uniqueSessionId(), contact_phone_number: phone.local, talk_time_duration: 40, total_time_duration: 50 })).status,
    ).toBe(202);
    const lead = await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164).find((l) => l.TIMELINE_COMMENTS.length > 0), "the call on the chat's lead");
    await waitForQuiet();
    expect(leadsWithPhone(await sandboxLeads(), phone.e164).map((l) => l.ID)).toEqual([lead.ID]);
  });

  it("reads a chat or a request a notification names (communication_id, offline_message_id) at once, as one lead with the feed", async () => {
    const phone = uniquePhone();
    const communicationId = chatId + 5_000_000;
    const chat = whatsAppChat(phone.e164, { communication_id: communicationId });
    const requester = uniquePhone();
    const request = { id: uniqueSessionId(), date_time: ago(5), form_name: "Заказ дивана", visitor_phone_number: requester.e164.slice(1), visitor_id: null };
    await sandbox("/_sandbox/comagic/data", { chats: [chat], chat_messages: [message(chat.id, 20, "chat_channel", "Привет")], offline_messages: [request] });
    const notified = await postWebhook({ communication_type: "chat", communication_id: communicationId });
    expect(notified.status).toBe(202);
    expect(await notified.json()).toMatchObject({ status: "accepted", fetch: "chat" });
    expect((await postWebhook({ offline_message_id: request.id })).status).toBe(202);
    const lead = await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164)[0], "the notified chat's lead");
    expect(lead.TITLE).toContain("WhatsApp");
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), requester.e164)[0], "the notified request's lead");
    await waitForQuiet();
    expect(await feedRun()).toMatchObject({ chats: 1, requests: 1, enqueued: 0 });
    expect(leadsWithPhone(await sandboxLeads(), phone.e164)).toHaveLength(1);
  });

  it("credits a lead the feed found late to the time CoMagic recorded its call, not to when it was read", async () => {
    visitor += 1;
    await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, ["paid", "organic"]) });
    const caller = uniquePhone();
    const startedAt = new Date(Date.now() - 50 * 60_000);
    const call = callsReportRow({ id: uniqueSessionId(), phone: caller.e164.slice(1), visitorId: visitor, startedAt });
    await sandbox("/_sandbox/comagic/data", { calls: [call] });
    expect(await feedRun()).toMatchObject({ enqueued: 1 });
    const lead = await waitFor(async () => leadsWithPhone(await sandboxLeads(), caller.e164)[0], "the call's lead");
    const credited = await waitFor(
      async () => env.DB?.prepare("SELECT created_at FROM attribution_touches WHERE entity = 'lead' AND entity_id = ?").bind(String(lead.ID)).first<{ created_at: string }>(),
      "the lead's credits",
    );
    expect(Math.abs(Date.parse(credited.created_at) - startedAt.getTime())).toBeLessThan(2_000);
  });

  it("reads a chat still open again once it closes: the cursor waits at its start", async () => {
    const phone = uniquePhone();
    const open = whatsAppChat(phone.e164, { status: "active", date_time: ago(30) });
    await sandbox("/_sandbox/comagic/data", { chats: [open] });
    expect(await feedRun()).toMatchObject({ ignored: { chat_open: 1 }, enqueued: 0 });
    expect(Date.parse((await state().get()).cursor ?? "")).toBeLessThanOrEqual(Date.now() - 29 * 60_000);

    await sandbox("/_sandbox/comagic/reset", {});
    await sandbox("/_sandbox/comagic/data", { chats: [{ ...open, status: "succeed" }], chat_messages: [message(open.id, 29, "chat_channel", "Хочу заказать")] });
    expect(await feedRun()).toMatchObject({ enqueued: 1 });
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164).length > 0, "the closed chat's lead");
  });

  it("keeps its cursor when a read fails, says why, and reads the same span again next time", async () => {
    const before = await state().get();
    await sandbox("/_sandbox/comagic/settings", { inRefused: [], dayRemaining: 0 });
    const failed = await cronRun();
    expect(failed.cursor).toBe(before.cursor);
    expect(failed.lastError).toContain("limit");
    // The operator sees it: when the feed last read, its cursor, what it found, and the error in words.
    const { feed } = await adminHealth();
    expect(feed).toMatchObject({ cursor: before.cursor, lastError: expect.stringContaining("limit") });
    await sandbox("/_sandbox/comagic/reset", {});
    await feedRun();
    expect((await state().get()).lastError).toBeNull();
    expect((await adminHealth()).feed).toMatchObject({ lastError: null, behindMinutes: 0, lastRead: { calls: 0, chats: 0, requests: 0 } });
  });
});

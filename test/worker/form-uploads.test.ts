import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../../worker/config";
import type { Env } from "../../worker/env";
import { runPortalTick } from "../../worker/jobs/scheduled";
import { createLogger } from "../../worker/log";
import { admin, comagicTime, postWebsiteForm, sandbox, sandboxLeads, uniquePhone, waitFor, workerWithEnv } from "./support";

/*
 * Our website forms into CoMagic as offline messages (issue #25 §2), in workerd against the sandbox's
 * upload.offline_messages (loop-docs/data_api__communication__upload_offline_messages.txt; FACTS-loop §2, §6): off
 * until the component is enabled (-32008), one of visitor_session_id / campaign_id / site_id and one of phone / email
 * required, ≤ 50 a request, a repeated ext_id's handling undocumented (the sandbox accepts it twice: the worker must
 * not send it twice), and what was uploaded shows in get.offline_messages_report as form_type "DataAPI".
 */

type Uploaded = { messages: { ext_id: string; phone?: string; visitor_session_id?: number; id: number }[] };

const log = createLogger({ test: "form-uploads" });
const FORMS = { COMAGIC_FORMS: "true", FEED_INTERVAL_MINUTES: "5" };

async function tick(): Promise<void> {
  const tickEnv = { ...env, ...FORMS } as unknown as Env;
  const result = readConfig(tickEnv);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  await runPortalTick(tickEnv, result.config, log, new Date());
}

const uploaded = async (): Promise<Uploaded> => (await sandbox("/_sandbox/comagic/offline-uploads")).json();
const SESSION = 5_500_000 + Math.floor(Math.random() * 400_000);

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  // "Загрузка офлайн-заявок из внешней системы" enabled by the CoMagic admin (FACTS-loop §2).
  await sandbox("/_sandbox/comagic/offline-uploads/settings", { enabled: true, duplicates: "accept" });
  // The visitor's session the snippet read (Comagic.getSessionId()), an hour before the form.
  await sandbox("/_sandbox/comagic/data", {
    visitor_sessions: [{ id: SESSION, date_time: comagicTime(new Date(Date.now() - 3_600_000)), visitor_id: SESSION * 2, channel: "paid", site_id: 77 }],
  });
});

describe("website forms into CoMagic", () => {
  it("sends a form whose lead was written once, as an offline message with the visitor's session, even when posted and ticked twice", async () => {
    const phone = uniquePhone();
    const form = { name: "Anna", phone: phone.local, comagic_session_id: String(SESSION), page_url: "https://shop.example.ru/sofa", form_name: "order" };
    const worker = workerWithEnv(FORMS);
    expect((await postWebsiteForm(form, worker)).status).toBeLessThan(300);
    await waitFor(async () => (await sandboxLeads()).some((l) => l.PHONE?.some((p) => p.VALUE.replace(/\D/g, "").endsWith(phone.e164.slice(2)))), "the form's lead");
    await waitFor(
      async () => ((await env.DB?.prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'default' AND key LIKE 'form-%'").first<{ n: number }>())?.n ?? 0) > 0,
      "the form in the ledger",
    );
    await tick();
    // The same submission again (the browser's retry after a lost answer): the same key, still one message.
    expect((await postWebsiteForm(form, worker)).status).toBeLessThan(300);
    await tick();

    const { messages } = await uploaded();
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ visitor_session_id: SESSION, phone: phone.e164.slice(1) });
    expect(messages[0]?.ext_id).toMatch(/^form-[0-9a-f]{32}$/);
    const row = await env.DB?.prepare("SELECT state, comagic_id FROM form_uploads WHERE portal = 'default' AND key = ?").bind(messages[0]?.ext_id).first<{ state: string; comagic_id: number }>();
    expect(row).toEqual({ state: "sent", comagic_id: messages[0]?.id });
  });

  it("does not make a second lead of the form when the feed reads it back from CoMagic's requests", async () => {
    const before = (await sandboxLeads()).length;
    const now = new Date();
    const res = await admin("/reconcile", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ from: new Date(now.getTime() - 2 * 3_600_000).toISOString(), to: new Date(now.getTime() + 60_000).toISOString() }),
    });
    const report = (await res.json()) as { requests: number; ignored: Record<string, number> };
    expect(report.requests).toBeGreaterThanOrEqual(1);
    expect(report.ignored.form_sent_by_worker).toBe(1);
    expect((await sandboxLeads()).length).toBe(before);
  });
});

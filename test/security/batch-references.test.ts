import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { handleLeadBatch } from "../../worker/jobs/consumer";
import { consumerDeps } from "../worker/consumer-support";
import { callEvent, formEvent } from "../fixtures/lead-event";
import { type LeadJob, leadJob } from "../../worker/jobs/schema";
import { bitrixCall, leadsWithPhone, sandbox, sandboxLeads, uniquePhone } from "../worker/support";

/*
 * FACTS.md §2.11: Bitrix24 replaces $result[…], $error[…], $next[…], $total[…], $time[…] inside every value of
 * a batch command. A form's name is user text that goes into the same batch as other people's leads.
 */

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

function lead(kind: "call" | "form", phone: string, name: string | null, message: string | null): LeadJob {
  const key = `${kind}-${crypto.randomUUID()}`;
  const fields = { key, sessionId: key, receivedAt: new Date().toISOString(), phone, name };
  return leadJob("default", kind === "call" ? callEvent(fields) : formEvent(fields, { message }), "batch-refs");
}

describe("batch references in user text", () => {
  it("the sandbox substitutes them as Bitrix24 does (so the next test can fail)", async () => {
    const phone = uniquePhone().e164;
    await bitrixCall("batch", {
      halt: 0,
      cmd: { first: `crm.lead.add?fields[TITLE]=first&fields[PHONE][0][VALUE]=${encodeURIComponent(phone)}`, second: "crm.lead.add?fields[TITLE]=second&fields[NAME]=$result[first]" },
    });
    const [first] = leadsWithPhone(await sandboxLeads(), phone);
    expect((await sandboxLeads()).find((l) => l.TITLE === "second")?.NAME).toBe(first?.ID);
  });

  it("a form named $result[add0] does not copy another lead's id (or error) into its lead", async () => {
    const other = uniquePhone().e164;
    const attacker = uniquePhone().e164;
    const batch = createMessageBatch("comagic-lead-jobs", [
      { id: "m0", timestamp: new Date(), attempts: 1, body: lead("call", other, null, null) },
      { id: "m1", timestamp: new Date(), attempts: 1, body: lead("form", attacker, "$result[add0]", "see $error[add0] and $total[uf0]") },
    ]);
    await handleLeadBatch(batch, consumerDeps());
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(2);
    const leads = await sandboxLeads();
    const [victim] = leadsWithPhone(leads, other);
    const [injected] = leadsWithPhone(leads, attacker);
    expect(injected?.NAME).not.toBe(victim?.ID);
    expect(injected?.NAME).toBe("＄result[add0]");
    expect(String(injected?.COMMENTS)).toContain("see ＄error[add0] and ＄total[uf0]");
  });
});

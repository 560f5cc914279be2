import * as z from "zod";
import { describe, expect, it } from "vitest";
import { batchBuilder } from "../../worker/bitrix/batch-builder";
import type { BitrixClient, BitrixCommand } from "../../worker/bitrix/client";
import { BitrixError } from "../../worker/bitrix/errors";

/** A client that answers each command of a batch from a table, and remembers what it was sent. */
function fakeClient(answer: (key: string, command: BitrixCommand) => unknown) {
  const sent: Record<string, BitrixCommand>[] = [];
  const client = {
    call: async () => null,
    batch: async (commands: Record<string, BitrixCommand>) => {
      sent.push(commands);
      return Object.fromEntries(
        Object.entries(commands).map(([key, command]) => {
          const result = answer(key, command);
          return [key, result instanceof BitrixError ? { ok: false as const, error: result } : { ok: true as const, result }];
        }),
      );
    },
  } as unknown as BitrixClient;
  return { client, sent };
}

describe("the typed batch builder", () => {
  it("gives each command its own key and reads its answer back through the handle, parsed with its schema", async () => {
    const { client, sent } = fakeClient((_key, command) => (command.method === "crm.lead.add" ? 17 : new BitrixError("", "Access denied.", false, "no")));
    const batch = batchBuilder();
    const lead = batch.add("add", { method: "crm.lead.add", params: {} }, z.union([z.string(), z.number()]).transform(String));
    const contact = batch.add("contact", { method: "crm.contact.add", params: {} }, z.string());
    const answers = await batch.send(client, { readOnly: false });
    expect(Object.keys(sent[0] ?? {})).toEqual(["add0", "contact1"]);
    expect(answers.value(lead)).toBe("17");
    expect(answers.value(contact)).toBeNull();
    expect(answers.outcome(contact)).toMatchObject({ ok: false, error: { message: "Access denied." } });
  });

  it("throws a failed required read with Bitrix24's own error, and a missing or misshapen one as a retryable unexpected answer", async () => {
    const denied = new BitrixError("", "Access denied.", false, "no");
    const { client } = fakeClient((key) => (key.startsWith("denied") ? denied : key.startsWith("rows") ? [{ ID: "5" }] : "not a list"));
    const batch = batchBuilder();
    const rows = batch.add("rows", { method: "crm.lead.list", params: {} }, z.array(z.object({ ID: z.string() })));
    const refused = batch.add("denied", { method: "crm.contact.list", params: {} }, z.array(z.unknown()));
    const misshapen = batch.add("odd", { method: "crm.deal.list", params: {} }, z.array(z.unknown()));
    const answers = await batch.send(client, { readOnly: true });
    expect(answers.required(rows)).toEqual([{ ID: "5" }]);
    expect(() => answers.required(refused)).toThrow(denied);
    expect(() => answers.required(misshapen)).toThrow(expect.objectContaining({ code: "ERROR_UNEXPECTED_ANSWER", transient: true, message: expect.stringContaining("crm.deal.list") }));
  });

  it("says why a command gave no usable result: Bitrix24's error, or an unexpected answer that a write may have applied", async () => {
    const busy = new BitrixError("QUERY_LIMIT_EXCEEDED", "Too many requests", true, "no");
    const { client } = fakeClient((key) => (key.startsWith("busy") ? busy : key.startsWith("call") ? { CALL_ID: "c-1" } : { CALL_ID: "" }));
    const batch = batchBuilder();
    const registered = z.object({ CALL_ID: z.string().min(1) });
    const call = batch.add("call", { method: "telephony.externalCall.register", params: {} }, registered);
    const refused = batch.add("busy", { method: "telephony.externalCall.register", params: {} }, registered);
    const odd = batch.add("odd", { method: "telephony.externalCall.register", params: {} }, registered);
    const answers = await batch.send(client, { readOnly: false });
    expect(answers.failure(call)).toBeNull();
    expect(answers.failure(refused)).toBe(busy);
    expect(answers.failure(odd)).toMatchObject({ code: "ERROR_UNEXPECTED_ANSWER", transient: true, applied: "unknown" });
    expect(answers.errors()).toEqual([busy]);
  });

  it("sends nothing when no command was added", async () => {
    const { client, sent } = fakeClient(() => null);
    const batch = batchBuilder();
    await batch.send(client, { readOnly: true });
    expect(batch.size).toBe(0);
    expect(sent).toEqual([]);
  });
});

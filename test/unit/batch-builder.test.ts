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

  it("sends nothing when no command was added", async () => {
    const { client, sent } = fakeClient(() => null);
    const batch = batchBuilder();
    await batch.send(client, { readOnly: true });
    expect(batch.size).toBe(0);
    expect(sent).toEqual([]);
  });
});

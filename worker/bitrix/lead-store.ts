import * as z from "zod";
import type { CallBackTodo } from "../domain/call-back";
import type { LeadEvent } from "../domain/lead-event";
import { LEAD_FIELD, ORIGINATOR_ID, type LeadLookup, type LeadSnapshot, type LeadWritePlan } from "../domain/lead-plan";
import { phoneSearchVariants } from "../domain/phone";
import type { BitrixClient, BitrixCommand, CommandOutcome } from "./client";
import { BitrixError } from "./errors";

export type WriteOutcome =
  | { ok: true; action: "created" | "updated" | "skipped"; leadId: string }
  | { ok: false; error: BitrixError };

/** Lead reads and writes for a round of events, a few `batch` requests per round whatever its size. */
export interface LeadStore {
  /** Keys already carried by a lead (ORIGIN_ID of the lead it created, or the latest UF_CRM_COMAGIC_ID). */
  findAppliedKeys(keys: readonly string[]): Promise<Map<string, string>>;
  /** `knownLeadIds`: per event key, leads our own records tie to its contacts, checked here like findbycomm's. */
  lookup(events: readonly LeadEvent[], knownLeadIds?: ReadonlyMap<string, readonly string[]>): Promise<Map<string, LeadLookup>>;
  apply(writes: readonly { event: LeadEvent; plan: LeadWritePlan }[]): Promise<Map<string, WriteOutcome>>;
  /** The leads with these ids as they are now; a deleted lead is simply missing. */
  snapshots(ids: readonly string[]): Promise<Map<string, LeadSnapshot>>;
  /** Adds to-dos (each add makes one: keep a ledger); answers the keys whose to-do Bitrix24 confirmed. */
  addTodos(todos: readonly { key: string; todo: CallBackTodo }[]): Promise<Set<string>>;
}

const LIST_PAGE_SIZE = 50;
const idString = z.union([z.string(), z.number()]).transform(String);
const nullableString = z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined || v === "" ? null : String(v)));
const multiField = z.array(z.object({ VALUE: z.string().nullish() }).loose()).nullish().transform((items) => (items ?? []).flatMap((i) => (i.VALUE ? [i.VALUE] : [])));

const keyRows = z.array(z.record(z.string(), z.unknown()));
const duplicateIds = z.union([
  z.array(z.never()).transform(() => [] as string[]),
  z.object({ LEAD: z.array(idString).optional() }).loose().transform((r) => r.LEAD ?? []),
]);
const snapshotRows = z.array(
  z
    .object({
      ID: idString,
      STATUS_SEMANTIC_ID: nullableString,
      DATE_CREATE: nullableString,
      NAME: nullableString,
      PHONE: multiField,
      EMAIL: multiField,
      UTM_SOURCE: nullableString,
      UTM_MEDIUM: nullableString,
      UTM_CAMPAIGN: nullableString,
      UTM_CONTENT: nullableString,
      UTM_TERM: nullableString,
      [LEAD_FIELD.visitorId]: nullableString,
    })
    .loose()
    .transform(
      (row): LeadSnapshot => ({
        id: row.ID,
        statusSemantic: row.STATUS_SEMANTIC_ID,
        dateCreate: row.DATE_CREATE,
        name: row.NAME,
        phones: row.PHONE,
        emails: row.EMAIL,
        utm: { source: row.UTM_SOURCE, medium: row.UTM_MEDIUM, campaign: row.UTM_CAMPAIGN, content: row.UTM_CONTENT, term: row.UTM_TERM },
        visitorId: row[LEAD_FIELD.visitorId],
      }),
    ),
);

const SNAPSHOT_SELECT = ["ID", "STATUS_SEMANTIC_ID", "DATE_CREATE", "NAME", "PHONE", "EMAIL", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM", LEAD_FIELD.visitorId];

function unwrap<T>(outcome: CommandOutcome | undefined, schema: z.ZodType<T>, what: string): T {
  if (!outcome) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 ${what}: missing from batch`, true, "no");
  if (!outcome.ok) throw outcome.error;
  const parsed = schema.safeParse(outcome.result);
  if (!parsed.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 ${what}: unexpected result shape`, true, "no");
  return parsed.data;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Rows whose key field really holds one of the keys: never trust that a filter on a missing field filtered. */
function leadsByKey(rows: Record<string, unknown>[], field: string, keys: Set<string>): Map<string, string> {
  const found = new Map<string, string>();
  for (const row of rows) {
    const key = row[field] === null || row[field] === undefined ? "" : String(row[field]);
    if (keys.has(key) && !found.has(key)) found.set(key, String(row.ID));
  }
  return found;
}

/** Two list commands a chunk of keys; each key matches at most one lead, so a page of 50 holds them all. */
function appliedKeyCommands(keys: readonly string[]): Record<string, BitrixCommand> {
  const commands: Record<string, BitrixCommand> = {};
  for (const [i, part] of chunks(keys, LIST_PAGE_SIZE).entries()) {
    commands[`uf${i}`] = {
      method: "crm.lead.list",
      params: { order: { ID: "ASC" }, filter: { [`@${LEAD_FIELD.comagicId}`]: part }, select: ["ID", LEAD_FIELD.comagicId] },
    };
    commands[`origin${i}`] = {
      method: "crm.lead.list",
      params: { order: { ID: "ASC" }, filter: { ORIGINATOR_ID, "@ORIGIN_ID": part }, select: ["ID", "ORIGIN_ID"] },
    };
  }
  return commands;
}

function appliedKeysFrom(found: Record<string, CommandOutcome>, keys: readonly string[]): Map<string, string> {
  const keySet = new Set(keys);
  const applied = new Map<string, string>();
  for (const [i] of chunks(keys, LIST_PAGE_SIZE).entries()) {
    for (const [field, name] of [[LEAD_FIELD.comagicId, `uf${i}`], ["ORIGIN_ID", `origin${i}`]] as const) {
      for (const [key, id] of leadsByKey(unwrap(found[name], keyRows, "crm.lead.list"), field, keySet)) applied.set(key, id);
    }
  }
  return applied;
}

export function createLeadStore(client: BitrixClient): LeadStore {
  async function readSnapshots(ids: readonly string[]): Promise<Map<string, LeadSnapshot>> {
    const snapshots = new Map<string, LeadSnapshot>();
    const unique = [...new Set(ids)];
    if (unique.length === 0) return snapshots;
    const listCommands: Record<string, BitrixCommand> = {};
    chunks(unique, LIST_PAGE_SIZE).forEach((part, i) => {
      listCommands[`leads${i}`] = { method: "crm.lead.list", params: { order: { ID: "ASC" }, filter: { "@ID": part }, select: SNAPSHOT_SELECT } };
    });
    const lists = await client.batch(listCommands, { readOnly: true });
    for (const key of Object.keys(listCommands)) {
      for (const lead of unwrap(lists[key], snapshotRows, "crm.lead.list")) snapshots.set(lead.id, lead);
    }
    return snapshots;
  }

  return {
    snapshots: readSnapshots,
    async addTodos(todos) {
      if (todos.length === 0) return new Set();
      const results = await client.batch(Object.fromEntries(todos.map(({ todo }, i) => [`todo${i}`, { method: "crm.activity.todo.add", params: { ...todo } }])), { readOnly: false });
      return new Set(todos.flatMap(({ key }, i) => (results[`todo${i}`]?.ok ? [key] : [])));
    },
    async findAppliedKeys(keys) {
      const unique = [...new Set(keys)];
      if (unique.length === 0) return new Map();
      return appliedKeysFrom(await client.batch(appliedKeyCommands(unique), { readOnly: true }), unique);
    },

    async lookup(events, knownLeadIds = new Map()) {
      const keys = [...new Set(events.map((e) => e.key))];
      const commands = appliedKeyCommands(keys);
      events.forEach((event, i) => {
        if (event.phone) {
          commands[`phone${i}`] = { method: "crm.duplicate.findbycomm", params: { entity_type: "LEAD", type: "PHONE", values: phoneSearchVariants(event.phone) } };
        }
        if (event.email) {
          commands[`email${i}`] = { method: "crm.duplicate.findbycomm", params: { entity_type: "LEAD", type: "EMAIL", values: [event.email] } };
        }
      });
      const found = await client.batch(commands, { readOnly: true });
      const applied = appliedKeysFrom(found, keys);
      const candidateIdsByEvent = events.map((event, i) => {
        if (applied.has(event.key)) return [];
        const ids = [
          ...(knownLeadIds.get(event.key) ?? []),
          ...(event.phone ? unwrap(found[`phone${i}`], duplicateIds, "crm.duplicate.findbycomm") : []),
          ...(event.email ? unwrap(found[`email${i}`], duplicateIds, "crm.duplicate.findbycomm") : []),
        ];
        return [...new Set(ids)];
      });

      const snapshots = await readSnapshots(candidateIdsByEvent.flat());

      return new Map(
        events.map((event, i) => [
          event.key,
          {
            appliedLeadId: applied.get(event.key) ?? null,
            candidates: (candidateIdsByEvent[i] ?? []).flatMap((id) => snapshots.get(id) ?? []),
          },
        ]),
      );
    },

    async apply(writes) {
      const outcomes = new Map<string, WriteOutcome>();
      // Phase one: new leads, and the timeline comment of each update. The comment goes first so that a
      // failure after it repeats the comment on retry rather than losing it.
      const first: Record<string, BitrixCommand> = {};
      writes.forEach(({ plan }, i) => {
        if (plan.action === "create") {
          first[`add${i}`] = { method: "crm.lead.add", params: { fields: plan.fields, params: { REGISTER_SONET_EVENT: "Y" } } };
        } else if (plan.action === "update") {
          first[`comment${i}`] = {
            method: "crm.timeline.comment.add",
            params: { fields: { ENTITY_ID: Number(plan.leadId), ENTITY_TYPE: "lead", COMMENT: plan.comment } },
          };
        }
      });
      const firstResults = Object.keys(first).length ? await client.batch(first, { readOnly: false }) : {};

      const second: Record<string, BitrixCommand> = {};
      writes.forEach(({ event, plan }, i) => {
        if (plan.action === "skip") {
          outcomes.set(event.key, { ok: true, action: "skipped", leadId: plan.leadId });
        } else if (plan.action === "create") {
          const result = firstResults[`add${i}`];
          const id = result?.ok ? idString.safeParse(result.result) : null;
          if (id?.success) outcomes.set(event.key, { ok: true, action: "created", leadId: id.data });
          else outcomes.set(event.key, { ok: false, error: result && !result.ok ? result.error : new BitrixError("ERROR_UNEXPECTED_ANSWER", "crm.lead.add returned no id", true, "unknown") });
        } else {
          const comment = firstResults[`comment${i}`];
          if (comment?.ok) second[`update${i}`] = { method: "crm.lead.update", params: { id: Number(plan.leadId), fields: plan.fields, params: { REGISTER_SONET_EVENT: "N" } } };
          else outcomes.set(event.key, { ok: false, error: comment && !comment.ok ? comment.error : new BitrixError("ERROR_UNEXPECTED_ANSWER", "crm.timeline.comment.add returned nothing", true, "unknown") });
        }
      });
      if (Object.keys(second).length) {
        const updates = await client.batch(second, { readOnly: false });
        writes.forEach(({ event, plan }, i) => {
          const result = updates[`update${i}`];
          if (!result || plan.action !== "update") return;
          outcomes.set(event.key, result.ok ? { ok: true, action: "updated", leadId: plan.leadId } : { ok: false, error: result.error });
        });
      }
      return outcomes;
    },
  };
}

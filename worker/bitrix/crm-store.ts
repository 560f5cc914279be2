import * as z from "zod";
import type { CallBackTodo } from "../domain/call-back";
import { ledgerRef, type CrmEntityRef, type CrmMode } from "../domain/crm-entity";
import type { LeadEvent, Utm } from "../domain/lead-event";
import { LEAD_FIELD, ORIGINATOR_ID, type LeadSnapshot } from "../domain/lead-plan";
import { phoneSearchVariants } from "../domain/phone";
import type { ClientSnapshot, CrmLookup, DealSnapshot, WritePlan } from "../domain/write-plan";
import type { BitrixClient, BitrixCommand } from "./client";
import { type BatchAnswers, type BatchBuilder, type BatchHandle, batchBuilder } from "./batch-builder";
import { BitrixError } from "./errors";

export type WriteOutcome =
  | {
      ok: true;
      action: "created" | "updated" | "skipped";
      /** The lead or deal the event landed on. */
      target: CrmEntityRef;
      /** The contact (or company) of a deal, which Bitrix24 telephony binds calls to; null for a lead. */
      client: CrmEntityRef | null;
      /** A deal created with a new contact (portals without leads): the report counts contacts made. */
      contactCreated?: boolean;
    }
  | { ok: false; error: BitrixError };

/** What enrichment and the call record read of a lead or deal: the fields they fill only when empty. */
export interface EntityFields {
  ref: CrmEntityRef;
  utm: Utm;
  visitorId: string | null;
  dateCreate: string | null;
}

/** CRM reads and writes for a round of events, a few `batch` requests per round whatever its size. */
export interface CrmStore {
  /** Keys already carried by a lead or deal (ORIGIN_ID of what it created, or the latest UF_CRM_COMAGIC_ID), as ledger refs. */
  findAppliedKeys(keys: readonly string[]): Promise<Map<string, string>>;
  /** `known`: per event key, entities our own records tie to its contacts, checked here like findbycomm's. */
  lookup(events: readonly LeadEvent[], mode: CrmMode, known?: ReadonlyMap<string, readonly CrmEntityRef[]>): Promise<Map<string, CrmLookup>>;
  apply(writes: readonly { event: LeadEvent; plan: WritePlan }[]): Promise<Map<string, WriteOutcome>>;
  /** The leads and deals with these refs as they are now (keyed by ledger ref); a deleted one is simply missing. */
  entityFields(refs: readonly CrmEntityRef[]): Promise<Map<string, EntityFields>>;
  /** Adds to-dos (each add makes one: keep a ledger); answers the keys whose to-do Bitrix24 confirmed. */
  addTodos(todos: readonly { key: string; todo: CallBackTodo }[]): Promise<Set<string>>;
}

const LIST_PAGE_SIZE = 50;
// A deal list command names this many clients, so that their open deals fit one page of 50.
const CLIENTS_PER_DEAL_LIST = 10;
const idString = z.union([z.string(), z.number()]).transform(String);
const nullableString = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" || v === "0" ? null : String(v)));
const multiField = z
  .array(z.object({ VALUE: z.string().nullish() }).loose())
  .nullish()
  .transform((items) => (items ?? []).flatMap((i) => (i.VALUE ? [i.VALUE] : [])));

const keyRows = z.array(z.record(z.string(), z.unknown()));
/** FACTS.md §2.5: `{"LEAD":[…],"CONTACT":[…],"COMPANY":[…]}` with only the types that have hits, `[]` for none. */
const duplicateIds = z.union([
  z.array(z.never()).transform(() => ({ LEAD: [] as string[], CONTACT: [] as string[], COMPANY: [] as string[] })),
  z
    .object({ LEAD: z.array(idString).optional(), CONTACT: z.array(idString).optional(), COMPANY: z.array(idString).optional() })
    .loose()
    .transform((r) => ({ LEAD: r.LEAD ?? [], CONTACT: r.CONTACT ?? [], COMPANY: r.COMPANY ?? [] })),
]);
type Duplicates = z.infer<typeof duplicateIds>;
type DuplicateType = keyof Duplicates;
const DUPLICATE_TYPES: readonly DuplicateType[] = ["LEAD", "CONTACT", "COMPANY"];
/** FACTS.md §2.5: at this many duplicates of one type, findbycomm answers no other type. */
const DUPLICATES_CAP = 20;
/** A findbycomm asked without entity_type, with what it answered. */
type CappedSearch = { params: { type: "PHONE" | "EMAIL"; values: string[] }; ids: Duplicates };

/** The other types of a search that reached the cap, each asked on its own. */
function askOtherTypes(batch: BatchBuilder, search: CappedSearch): { type: DuplicateType; handle: BatchHandle<Duplicates> }[] {
  if (!DUPLICATE_TYPES.some((t) => search.ids[t].length >= DUPLICATES_CAP)) return [];
  return DUPLICATE_TYPES.filter((t) => search.ids[t].length < DUPLICATES_CAP).map((type) => ({
    type,
    handle: batch.add(`again-${type}`, { method: "crm.duplicate.findbycomm", params: { ...search.params, entity_type: type } }, duplicateIds),
  }));
}

const utmColumns = { UTM_SOURCE: nullableString, UTM_MEDIUM: nullableString, UTM_CAMPAIGN: nullableString, UTM_CONTENT: nullableString, UTM_TERM: nullableString };
const utmOf = (row: Record<"UTM_SOURCE" | "UTM_MEDIUM" | "UTM_CAMPAIGN" | "UTM_CONTENT" | "UTM_TERM", string | null>): Utm => ({
  source: row.UTM_SOURCE,
  medium: row.UTM_MEDIUM,
  campaign: row.UTM_CAMPAIGN,
  content: row.UTM_CONTENT,
  term: row.UTM_TERM,
});
const UTM_SELECT = ["UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM"];

const leadRows = z.array(
  z
    .object({
      ID: idString,
      STATUS_SEMANTIC_ID: nullableString,
      DATE_CREATE: nullableString,
      NAME: nullableString,
      PHONE: multiField,
      EMAIL: multiField,
      ...utmColumns,
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
        utm: utmOf(row),
        visitorId: row[LEAD_FIELD.visitorId],
      }),
    ),
);
const LEAD_SELECT = ["ID", "STATUS_SEMANTIC_ID", "DATE_CREATE", "NAME", "PHONE", "EMAIL", ...UTM_SELECT, LEAD_FIELD.visitorId];

const dealRows = z.array(
  z
    .object({
      ID: idString,
      STAGE_SEMANTIC_ID: nullableString,
      DATE_CREATE: nullableString,
      CONTACT_ID: nullableString,
      COMPANY_ID: nullableString,
      ...utmColumns,
      [LEAD_FIELD.visitorId]: nullableString,
    })
    .loose()
    .transform(
      (row): DealSnapshot => ({
        id: row.ID,
        stageSemantic: row.STAGE_SEMANTIC_ID,
        dateCreate: row.DATE_CREATE,
        contactId: row.CONTACT_ID,
        companyId: row.COMPANY_ID,
        utm: utmOf(row),
        visitorId: row[LEAD_FIELD.visitorId],
      }),
    ),
);
const DEAL_SELECT = ["ID", "STAGE_SEMANTIC_ID", "DATE_CREATE", "CONTACT_ID", "COMPANY_ID", ...UTM_SELECT, LEAD_FIELD.visitorId];

const clientRows = (type: ClientSnapshot["type"]) =>
  z.array(
    z
      .object({ ID: idString, COMPANY_ID: nullableString.optional(), PHONE: multiField, EMAIL: multiField })
      .loose()
      .transform((row): ClientSnapshot => ({ type, id: row.ID, companyId: type === "contact" ? (row.COMPANY_ID ?? null) : null, phones: row.PHONE, emails: row.EMAIL })),
  );

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Rows whose key field really holds one of the keys: never trust that a filter on a missing field filtered. */
function rowsByKey(rows: Record<string, unknown>[], field: string, keys: Set<string>): Map<string, Record<string, unknown>> {
  const found = new Map<string, Record<string, unknown>>();
  for (const row of rows) {
    const key = row[field] === null || row[field] === undefined ? "" : String(row[field]);
    if (keys.has(key) && !found.has(key)) found.set(key, row);
  }
  return found;
}

/** A deal row's client: its (first) contact, else its company. */
function clientOf(row: Record<string, unknown>): CrmEntityRef | null {
  const id = (v: unknown) => (v === null || v === undefined || String(v) === "" || String(v) === "0" ? null : String(v));
  const contact = id(row.CONTACT_ID);
  const company = id(row.COMPANY_ID);
  return contact ? { type: "contact", id: contact } : company ? { type: "company", id: company } : null;
}

/** `created`: the event made it (found by its ORIGIN_ID), rather than only updated it. */
type AppliedEntity = CrmEntityRef & { client: CrmEntityRef | null; created: boolean };

const list = (method: string, filter: Record<string, unknown>, select: string[], order: Record<string, string> = { ID: "ASC" }): BitrixCommand => ({ method, params: { order, filter, select } });

/** Where an event's key may be found: lead and deal fields (the key is written to both), and a contact the event made. */
const KEY_SOURCES = [
  { name: "leadUf", method: "crm.lead.list", field: LEAD_FIELD.comagicId, entity: "lead", modes: ["classic"] },
  { name: "leadOrigin", method: "crm.lead.list", field: "ORIGIN_ID", entity: "lead", modes: ["classic"] },
  { name: "dealUf", method: "crm.deal.list", field: LEAD_FIELD.comagicId, entity: "deal", modes: ["classic", "simple"] },
  { name: "dealOrigin", method: "crm.deal.list", field: "ORIGIN_ID", entity: "deal", modes: ["simple"] },
  { name: "contactOrigin", method: "crm.contact.list", field: "ORIGIN_ID", entity: "contact", modes: ["simple"] },
] as const;
type KeySource = (typeof KEY_SOURCES)[number];
const searchedIn = (source: KeySource, mode: CrmMode) => (source.modes as readonly CrmMode[]).includes(mode);

/** One list command per key source (of any of `modes`) and page of keys; `keysFrom` reads them back. */
function addKeyQueries(batch: BatchBuilder, keys: readonly string[], modes: readonly CrmMode[]) {
  return chunks(keys, LIST_PAGE_SIZE).flatMap((part) =>
    KEY_SOURCES.filter((source) => modes.some((mode) => searchedIn(source, mode))).map((source) => {
      const filter = source.field === "ORIGIN_ID" ? { ORIGINATOR_ID, "@ORIGIN_ID": part } : { [`@${source.field}`]: part };
      // A deal's contact comes along: a retried event that finds its deal needs it (telephony, the ledger's record).
      const select = ["ID", source.field, ...(source.entity === "deal" ? ["CONTACT_ID", "COMPANY_ID"] : [])];
      return { source, handle: batch.add(source.name, list(source.method, filter, select), keyRows) };
    }),
  );
}
type KeyQueries = ReturnType<typeof addKeyQueries>;

/** Per key: the lead or deal carrying it (with a deal's client), and (simple portals) the contact an earlier try of the event made. */
function keysFrom(answers: BatchAnswers, queries: KeyQueries, keys: readonly string[], mode: CrmMode): { applied: Map<string, AppliedEntity>; madeContacts: Map<string, string> } {
  const keySet = new Set(keys);
  const applied = new Map<string, AppliedEntity>();
  const madeContacts = new Map<string, string>();
  for (const { source, handle } of queries) {
    if (!searchedIn(source, mode)) continue;
    for (const [key, row] of rowsByKey(answers.required(handle), source.field, keySet)) {
      const id = String(row.ID);
      const created = source.field === "ORIGIN_ID";
      const earlier = applied.get(key);
      if (source.entity === "contact") madeContacts.set(key, id);
      else if (!earlier) applied.set(key, { type: source.entity, id, client: source.entity === "deal" ? clientOf(row) : null, created });
      else if (created && earlier.type === source.entity && earlier.id === id) earlier.created = true;
    }
  }
  return { applied, madeContacts };
}

export function createCrmStore(client: BitrixClient): CrmStore {
  /** Reads leads, contacts, companies and the open deals of those clients, in one batch. */
  async function readRelated(ids: { leads: string[]; contacts: string[]; companies: string[] }) {
    const batch = batchBuilder();
    const unique = (xs: string[]) => [...new Set(xs)];
    const pages = <T>(values: string[], size: number, add: (part: string[]) => BatchHandle<T>) => chunks(unique(values), size).map(add);
    const leadPages = pages(ids.leads, LIST_PAGE_SIZE, (part) => batch.add("leads", list("crm.lead.list", { "@ID": part }, LEAD_SELECT), leadRows));
    const clientPages = [
      ...pages(ids.contacts, LIST_PAGE_SIZE, (part) => batch.add("contacts", list("crm.contact.list", { "@ID": part }, ["ID", "COMPANY_ID", "PHONE", "EMAIL"]), clientRows("contact"))),
      ...pages(ids.companies, LIST_PAGE_SIZE, (part) => batch.add("companies", list("crm.company.list", { "@ID": part }, ["ID", "PHONE", "EMAIL"]), clientRows("company"))),
    ];
    // FACTS-portals §2: crm.deal.list filters by a deal's (first) CONTACT_ID and COMPANY_ID; CONTACT_IDS is not filterable.
    const dealPages = (["CONTACT_ID", "COMPANY_ID"] as const).flatMap((field) =>
      pages(field === "CONTACT_ID" ? ids.contacts : ids.companies, CLIENTS_PER_DEAL_LIST, (part) =>
        batch.add(`deals${field}`, list("crm.deal.list", { [`@${field}`]: part, STAGE_SEMANTIC_ID: "P" }, DEAL_SELECT, { ID: "DESC" }), dealRows),
      ),
    );
    const answers = await batch.send(client, { readOnly: true });
    const leads = new Map(leadPages.flatMap((page) => answers.required(page)).map((lead) => [lead.id, lead]));
    const clients = new Map(clientPages.flatMap((page) => answers.required(page)).map((c) => [`${c.type}:${c.id}`, c]));
    const deals = new Map(dealPages.flatMap((page) => answers.required(page)).map((deal) => [deal.id, deal]));
    return { leads, clients, deals };
  }

  /**
   * FACTS.md §2.5: "If 20 or more duplicates are found for one object type, the other types are not returned."
   * A caller whose phone is on 20 old leads would lose their contact and its open deal; such searches are asked
   * again for the other types one by one (entity_type), in one more batch, only when it happens.
   */
  async function completeCappedSearches(searches: readonly { phone: CappedSearch | null; email: CappedSearch | null }[]): Promise<{ phone: Duplicates | null; email: Duplicates | null }[]> {
    const again = batchBuilder();
    const asked = searches.map((s) => ({
      phone: s.phone ? askOtherTypes(again, s.phone) : [],
      email: s.email ? askOtherTypes(again, s.email) : [],
    }));
    const answers = again.size ? await again.send(client, { readOnly: true }) : null;
    const merged = (search: CappedSearch | null, handles: { type: DuplicateType; handle: BatchHandle<Duplicates> }[]): Duplicates | null => {
      if (!search) return null;
      const out: Duplicates = { LEAD: [...search.ids.LEAD], CONTACT: [...search.ids.CONTACT], COMPANY: [...search.ids.COMPANY] };
      for (const { type, handle } of handles) if (answers) out[type] = [...new Set([...out[type], ...answers.required(handle)[type]])];
      return out;
    };
    return searches.map((s, i) => ({ phone: merged(s.phone, asked[i]?.phone ?? []), email: merged(s.email, asked[i]?.email ?? []) }));
  }

  return {
    async addTodos(todos) {
      if (todos.length === 0) return new Set();
      const batch = batchBuilder();
      const handles = todos.map(({ key, todo }) => ({ key, handle: batch.add("todo", { method: "crm.activity.todo.add", params: { ...todo } }, z.unknown()) }));
      const answers = await batch.send(client, { readOnly: false });
      return new Set(handles.flatMap(({ key, handle }) => (answers.outcome(handle)?.ok ? [key] : [])));
    },

    async findAppliedKeys(keys) {
      const unique = [...new Set(keys)];
      if (unique.length === 0) return new Map();
      const batch = batchBuilder();
      const queries = addKeyQueries(batch, unique, ["classic", "simple"]);
      const answers = await batch.send(client, { readOnly: true });
      const applied = new Map<string, string>();
      for (const mode of ["classic", "simple"] as const) for (const [key, ref] of keysFrom(answers, queries, unique, mode).applied) applied.set(key, ledgerRef({ type: ref.type, id: ref.id }));
      return applied;
    },

    async entityFields(refs) {
      const byType = (type: "lead" | "deal") => [...new Set(refs.filter((r) => r.type === type).map((r) => r.id))];
      const batch = batchBuilder();
      const leadPages = chunks(byType("lead"), LIST_PAGE_SIZE).map((part) => batch.add("lead", list("crm.lead.list", { "@ID": part }, LEAD_SELECT), leadRows));
      const dealPages = chunks(byType("deal"), LIST_PAGE_SIZE).map((part) => batch.add("deal", list("crm.deal.list", { "@ID": part }, DEAL_SELECT), dealRows));
      const answers = await batch.send(client, { readOnly: true });
      const out = new Map<string, EntityFields>();
      const keep = (type: "lead" | "deal", row: { id: string; utm: Utm; visitorId: string | null; dateCreate: string | null }) =>
        out.set(ledgerRef({ type, id: row.id }), { ref: { type, id: row.id }, utm: row.utm, visitorId: row.visitorId, dateCreate: row.dateCreate });
      for (const page of leadPages) for (const row of answers.required(page)) keep("lead", row);
      for (const page of dealPages) for (const row of answers.required(page)) keep("deal", row);
      return out;
    },

    async lookup(events, mode, known = new Map()) {
      const keys = [...new Set(events.map((e) => e.key))];
      const batch = batchBuilder();
      const queries = addKeyQueries(batch, keys, [mode]);
      // Without entity_type, findbycomm answers leads, contacts and companies at once (FACTS.md §2.5).
      const searches = events.map((event) => ({
        phone: event.phone ? batch.add("phone", { method: "crm.duplicate.findbycomm", params: { type: "PHONE", values: phoneSearchVariants(event.phone) } }, duplicateIds) : null,
        email: event.email ? batch.add("email", { method: "crm.duplicate.findbycomm", params: { type: "EMAIL", values: [event.email] } }, duplicateIds) : null,
      }));
      const answers = await batch.send(client, { readOnly: true });
      const { applied, madeContacts } = keysFrom(answers, queries, keys, mode);
      const none: Duplicates & { hinted: CrmEntityRef[] } = { LEAD: [], CONTACT: [], COMPANY: [], hinted: [] };
      const found = await completeCappedSearches(
        events.map((event, i) => {
          const search = searches[i];
          return {
            phone: search?.phone ? { params: { type: "PHONE", values: phoneSearchVariants(event.phone ?? "") }, ids: answers.required(search.phone) } : null,
            email: search?.email ? { params: { type: "EMAIL", values: [event.email ?? ""] }, ids: answers.required(search.email) } : null,
          };
        }),
      );
      const matches = events.map((event, i) => {
        if (applied.has(event.key)) return none;
        const phone = found[i]?.phone ?? none;
        const email = found[i]?.email ?? none;
        const ours = known.get(event.key) ?? [];
        const made = madeContacts.get(event.key);
        const of = (type: "lead" | "contact" | "company") => ours.filter((r) => r.type === type).map((r) => r.id);
        const searched = { lead: [...phone.LEAD, ...email.LEAD], contact: [...(made ? [made] : []), ...phone.CONTACT, ...email.CONTACT], company: [...phone.COMPANY, ...email.COMPANY] };
        return {
          LEAD: mode === "classic" ? [...new Set([...of("lead"), ...searched.lead])] : [],
          CONTACT: [...new Set([...of("contact"), ...searched.contact])],
          COMPANY: [...new Set([...of("company"), ...searched.company])],
          // What only the ledger named is checked against the record read back (write-plan.ts confirmHints).
          hinted: ours.filter((r) => r.type !== "deal" && !searched[r.type].includes(r.id)),
        };
      });

      const related = await readRelated({ leads: matches.flatMap((m) => m.LEAD), contacts: matches.flatMap((m) => m.CONTACT), companies: matches.flatMap((m) => m.COMPANY) });
      const allDeals = [...related.deals.values()];
      return new Map(
        events.map((event, i) => {
          const match = matches[i] ?? none;
          const clients = [...match.CONTACT.map((id) => related.clients.get(`contact:${id}`)), ...match.COMPANY.map((id) => related.clients.get(`company:${id}`))].filter(
            (c): c is ClientSnapshot => c !== undefined,
          );
          const lookup: CrmLookup = {
            applied: applied.get(event.key) ?? null,
            leads: match.LEAD.flatMap((id) => related.leads.get(id) ?? []),
            clients,
            deals: allDeals.filter((d) => (d.contactId && match.CONTACT.includes(d.contactId)) || (d.companyId && match.COMPANY.includes(d.companyId))),
            hinted: match.hinted,
          };
          return [event.key, lookup];
        }),
      );
    },

    async apply(writes) {
      const outcomes = new Map<string, WriteOutcome>();
      // A write with no usable answer says why; `failure` is null only when the answer parsed.
      const failed = (answers: BatchAnswers, handle: BatchHandle<unknown>): WriteOutcome => ({
        ok: false,
        error: answers.failure(handle) ?? new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 ${handle.method}: no answer`, true, "unknown"),
      });
      const anything = z.unknown();

      // Phase one: new leads, new contacts, and the timeline comment of each update. The comment goes first so
      // that a failure after it repeats the comment on retry rather than losing it.
      const first = batchBuilder();
      const firstHandles = writes.map(({ plan }) => {
        if (plan.action === "create-lead") return first.add("add", { method: "crm.lead.add", params: { fields: plan.fields, params: { REGISTER_SONET_EVENT: "Y" } } }, idString);
        if (plan.action === "create-deal" && "fields" in plan.contact)
          return first.add("contact", { method: "crm.contact.add", params: { fields: plan.contact.fields, params: { REGISTER_SONET_EVENT: "N" } } }, idString);
        if (plan.action === "update") {
          return first.add(
            "comment",
            { method: "crm.timeline.comment.add", params: { fields: { ENTITY_ID: Number(plan.target.id), ENTITY_TYPE: plan.target.type, COMMENT: plan.comment } } },
            anything,
          );
        }
        return null;
      });
      const firstAnswers = await first.send(client, { readOnly: false });

      // Phase two: updates after their comment, deals once their contact exists.
      const second = batchBuilder();
      const secondHandles = writes.map(({ event, plan }, i) => {
        const handle = firstHandles[i] ?? null;
        if (plan.action === "skip") {
          outcomes.set(event.key, { ok: true, action: "skipped", target: plan.target, client: plan.client ?? null });
        } else if (plan.action === "create-lead" && handle) {
          const id = firstAnswers.value(handle);
          outcomes.set(event.key, typeof id === "string" ? { ok: true, action: "created", target: { type: "lead", id }, client: null } : failed(firstAnswers, handle));
        } else if (plan.action === "update" && handle) {
          if (!firstAnswers.failure(handle)) {
            return {
              client: null,
              handle: second.add("update", { method: `crm.${plan.target.type}.update`, params: { id: Number(plan.target.id), fields: plan.fields, params: { REGISTER_SONET_EVENT: "N" } } }, anything),
            };
          }
          outcomes.set(event.key, failed(firstAnswers, handle));
        } else if (plan.action === "create-deal") {
          const made = handle ? firstAnswers.value(handle) : null;
          const contactId = "id" in plan.contact ? plan.contact.id : typeof made === "string" ? made : null;
          if (!contactId) {
            if (handle) outcomes.set(event.key, failed(firstAnswers, handle));
            return null;
          }
          const client: CrmEntityRef = { type: "contact", id: contactId };
          return { client, handle: second.add("deal", { method: "crm.deal.add", params: { fields: { ...plan.fields, CONTACT_ID: contactId }, params: { REGISTER_SONET_EVENT: "Y" } } }, idString) };
        }
        return null;
      });
      if (second.size === 0) return outcomes;
      const secondAnswers = await second.send(client, { readOnly: false });
      writes.forEach(({ event, plan }, i) => {
        const step = secondHandles[i];
        if (!step) return;
        if (plan.action === "update") {
          outcomes.set(event.key, secondAnswers.failure(step.handle) ? failed(secondAnswers, step.handle) : { ok: true, action: "updated", target: plan.target, client: plan.client });
        } else if (plan.action === "create-deal") {
          const id = secondAnswers.value(step.handle);
          outcomes.set(
            event.key,
            typeof id === "string" ? { ok: true, action: "created", target: { type: "deal", id }, client: step.client, contactCreated: "fields" in plan.contact } : failed(secondAnswers, step.handle),
          );
        }
      });
      return outcomes;
    },
  };
}

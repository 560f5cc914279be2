import { bitrixNormalizePhone } from "./normalize-phone";

/** An error the way Bitrix24 sends it: HTTP status plus `{error, error_description}`. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
  ) {
    super(`${code}: ${description}`);
  }
}

interface MultiValue {
  ID: number;
  VALUE: string;
  VALUE_TYPE: string;
  /** When crm.duplicate.findbycomm starts to find it (epoch ms): see `findbycommLagMs`. */
  indexedAt: number;
}

/** A lead, deal, contact or company: the four CRM entities share storage and list/filter rules. */
interface Item {
  ID: number;
  fields: Record<string, string | null>;
  PHONE: MultiValue[];
  EMAIL: MultiValue[];
  DATE_CREATE: Date;
  DATE_MODIFY: Date;
}

export type EntityName = "lead" | "deal" | "contact" | "company";
const ENTITIES: EntityName[] = ["lead", "deal", "contact", "company"];
/** FACTS-portals §6: ownerTypeId 1 lead, 2 deal, 3 contact, 4 company. */
const OWNER_TYPE_ID: Record<EntityName, number> = { lead: 1, deal: 2, contact: 3, company: 4 };

interface UserField {
  ID: number;
  FIELD_NAME: string;
  USER_TYPE_ID: string;
  LABEL: string;
  MULTIPLE: string;
  MANDATORY: string;
  SORT: string;
  XML_ID: string | null;
}

interface TimelineComment {
  ID: number;
  ENTITY_ID: number;
  ENTITY_TYPE: string;
  COMMENT: string;
  CREATED: Date;
}

/** A call registered through telephony.externalCall.register (FACTS.md §2.9, FACTS-portals §7). */
interface ExternalCall {
  CALL_ID: string;
  EXTERNAL_CALL_ID: string | null;
  USER_ID: number;
  PHONE_NUMBER: string;
  TYPE: number;
  /** When the call started, as the register call gave it (ISO-8601; FACTS.md §2.9); null: not given. */
  CALL_START_DATE: string | null;
  CRM_ENTITY_TYPE: string | null;
  CRM_ENTITY_ID: number | null;
  registeredAt: number;
  finished: { DURATION: number; STATUS_CODE: string; activityId: number | null } | null;
  /** The recording as Bitrix24 keeps it: what its download got (`contentType`), under the name it was given. */
  record: { url: string | null; fileName: string; contentType?: string | null; bytes?: number } | null;
}

/**
 * How the sandbox fetches a RECORD_URL (app.ts: media.comagic.ru from the stand-in host, other links over HTTP),
 * cut off by `signal` when the REST request's time is up.
 */
export type RecordFetch = (url: string, signal: AbortSignal) => Promise<Response>;

type Params = Record<string, unknown>;

/** A portal's people when it is made (each portal copies them): an administrator, and sales managers who are not. */
export const SANDBOX_USERS = [
  { ID: 1, NAME: "Ivan", LAST_NAME: "Admin", EMAIL: "admin@shop.example.ru", ADMIN: true },
  { ID: 2, NAME: "Maria", LAST_NAME: "Sales", EMAIL: "maria@shop.example.ru", ADMIN: false },
  { ID: 3, NAME: "Oleg", LAST_NAME: "Newcomer", EMAIL: "oleg@shop.example.ru", ADMIN: false },
  // Only the call-limit test calls as Pavel: a burst that starts from zero in its minute.
  { ID: 4, NAME: "Pavel", LAST_NAME: "Burst", EMAIL: "pavel@shop.example.ru", ADMIN: false },
];

const UTM = ["UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM"];
const COMMON = ["SOURCE_ID", "SOURCE_DESCRIPTION", "ASSIGNED_BY_ID", "OPENED", "COMMENTS", "ORIGINATOR_ID", "ORIGIN_ID", ...UTM];
/** Writable standard fields per entity (FACTS-portals §2–3); anything else is dropped silently, as Bitrix24 does. */
const STANDARD_FIELDS: Record<EntityName, string[]> = {
  lead: ["TITLE", "HONORIFIC", "NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_TITLE", "STATUS_ID", "STATUS_DESCRIPTION", "POST", "CURRENCY_ID", "OPPORTUNITY", "CONTACT_ID", "COMPANY_ID", ...COMMON],
  deal: ["TITLE", "CATEGORY_ID", "STAGE_ID", "OPPORTUNITY", "CURRENCY_ID", "CONTACT_ID", "COMPANY_ID", "BEGINDATE", "CLOSEDATE", ...COMMON],
  contact: ["NAME", "SECOND_NAME", "LAST_NAME", "HONORIFIC", "TYPE_ID", "POST", "COMPANY_ID", ...COMMON],
  company: ["TITLE", "COMPANY_TYPE", "INDUSTRY", ...COMMON],
};
/** Read-only fields Bitrix24 fills itself: a deal's LEAD_ID (set by conversion), IS_RETURN_CUSTOMER (FACTS-portals §4). */
const READ_ONLY_FIELDS: Record<EntityName, string[]> = { lead: ["IS_RETURN_CUSTOMER"], deal: ["LEAD_ID", "IS_RETURN_CUSTOMER"], contact: [], company: [] };
const HAS_MULTI: Record<EntityName, boolean> = { lead: true, deal: false, contact: true, company: true };
const MULTI_FIELDS = ["PHONE", "EMAIL"] as const;
const PHONE_TYPES = new Set(["WORK", "MOBILE", "FAX", "HOME", "PAGER", "MAILING", "OTHER"]);
const EMAIL_TYPES = new Set(["WORK", "HOME", "MAILING", "OTHER"]);
const EMAIL_SYNTAX = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LIST_PAGE_SIZE = 50;
/** FACTS.md §2.9: a re-register within 30 minutes with the same EXTERNAL_CALL_ID returns the same call. */
const REREGISTER_WINDOW_MS = 30 * 60_000;

function leadSemantic(statusId: string | null): string {
  if (statusId === "CONVERTED") return "S";
  if (statusId === "JUNK") return "F";
  return "P";
}

/** FACTS-portals §2: P for NEW…FINAL_INVOICE, S for WON, F for LOSE and APOLOGY; other funnels prefix `C1:`. */
/**
 * The portal's deal funnels (FACTS-portals §2: CATEGORY_ID ≥ 0, the general funnel 0; stages of funnel N are `CN:…`,
 * the general funnel's unprefixed; a new deal starts in its funnel's first stage). The sandbox has two.
 */
export const DEAL_FUNNELS: { id: number; name: string; stages: { id: string; name: string }[] }[] = [
  {
    id: 0,
    name: "General",
    stages: [
      { id: "NEW", name: "New" },
      { id: "PREPARATION", name: "Preparing documents" },
      { id: "PREPAYMENT_INVOICE", name: "Prepayment invoice" },
      { id: "EXECUTING", name: "In progress" },
      { id: "FINAL_INVOICE", name: "Final invoice" },
      { id: "WON", name: "Deal won" },
      { id: "LOSE", name: "Deal lost" },
      { id: "APOLOGY", name: "Analyze failure" },
    ],
  },
  {
    id: 1,
    name: "Wholesale",
    stages: [
      { id: "C1:NEW", name: "Request" },
      { id: "C1:PREPARATION", name: "Offer sent" },
      { id: "C1:WON", name: "Deal won" },
      { id: "C1:LOSE", name: "Deal lost" },
    ],
  },
];

function dealSemantic(stageId: string | null): string {
  const stage = (stageId ?? "NEW").replace(/^C\d+:/, "");
  if (stage === "WON") return "S";
  if (stage === "LOSE" || stage === "APOLOGY") return "F";
  return "P";
}

/**
 * One row of the stage journal that crm.stagehistory.list reads (loop-docs/api-reference__crm__crm-stage-history-list.txt).
 * When a row is written follows Bitrix24's source (crm/lib/history/stagehistory/abstractstagehistory.php and
 * abstractdeallikestagehistory.php, code index ids 15212350949 and 15836117508): an item added in progress gets
 * TYPE_ID 1, one added in a final stage 3 (not 1); an update that changes the funnel 5, one that changes the stage 3
 * (final) or 2; no row when the latest row already names that funnel and stage. Deleting the item deletes its rows.
 */
interface StageHistoryRow {
  ID: number;
  /** 1 lead (STATUS_ID, no funnel), 2 deal. */
  entityTypeId: 1 | 2;
  TYPE_ID: 1 | 2 | 3 | 5;
  OWNER_ID: number;
  CREATED_TIME: Date;
  /** The deal's funnel; null for a lead. */
  CATEGORY_ID: number | null;
  semantic: string;
  stage: string;
  /** The row the item's creation wrote: `setDealDates` moves it along with DATE_CREATE. */
  creation: boolean;
}

/** crm.stagehistory.list answers `{items: [...]}` (the sample) or the bare array (the field table): [CONFLICT] in the reference. */
export type StageHistoryShape = "items" | "array";

/** Fields crm.stagehistory.list filters, orders and selects on, per entityTypeId (l.52-58 of the reference). */
const STAGE_HISTORY_FIELDS: Record<1 | 2, string[]> = {
  1: ["ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "STATUS_SEMANTIC_ID", "STATUS_ID"],
  2: ["ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "CATEGORY_ID", "STAGE_SEMANTIC_ID", "STAGE_ID"],
};
const NUMERIC_HISTORY_FIELDS = new Set(["ID", "TYPE_ID", "OWNER_ID", "CATEGORY_ID"]);
/** Old (5) and new (31) invoices have a stage history too (l.14); this portal has none, so their lists are empty. */
const EMPTY_HISTORY_TYPES = new Set([5, 31]);

/** A row of crm.currency.list: every field a string, as FACTS-portals §11 and the method's docs show. */
export interface SandboxCurrency {
  CURRENCY: string;
  /** How many units AMOUNT is the price of: 100 for KZT means AMOUNT is the base-currency price of 100 tenge. */
  AMOUNT_CNT: string;
  /** The price of AMOUNT_CNT units in the base currency ("1.0000" for the base itself). */
  AMOUNT: string;
  SORT: string;
  BASE: "Y" | "N";
  FULL_NAME: string;
  LID: string;
  FORMAT_STRING: string;
  DEC_POINT: string;
  THOUSANDS_SEP: string | null;
  DECIMALS: string;
  DATE_UPDATE: string | null;
}

/** What `setCurrencies` takes: the code and rate, the rest defaults (one row must be the base). */
export type CurrencyInput = Pick<SandboxCurrency, "CURRENCY" | "AMOUNT"> & Partial<SandboxCurrency>;

const CURRENCY_DEFAULTS_UPDATED = "2026-01-12T10:00:00+03:00";
/** A Russian portal's currencies: roubles the base; tenge priced per 100, as Bitrix24 keeps weak currencies (AMOUNT_CNT). */
const DEFAULT_CURRENCIES: CurrencyInput[] = [
  { CURRENCY: "RUB", AMOUNT_CNT: "1", AMOUNT: "1.0000", BASE: "Y", FULL_NAME: "Российский рубль", FORMAT_STRING: "# руб." },
  { CURRENCY: "USD", AMOUNT_CNT: "1", AMOUNT: "90.0000", FULL_NAME: "Доллар США", FORMAT_STRING: "$#" },
  { CURRENCY: "EUR", AMOUNT_CNT: "1", AMOUNT: "100.0000", FULL_NAME: "Евро", FORMAT_STRING: "# €" },
  { CURRENCY: "KZT", AMOUNT_CNT: "100", AMOUNT: "18.0000", FULL_NAME: "Казахстанский тенге", FORMAT_STRING: "# ₸" },
];

/** Refused sandbox control input (the control routes answer 400 with its message); never a REST error. */
export class ControlError extends Error {}

function currencyRows(rows: CurrencyInput[], updated: string): SandboxCurrency[] {
  const codes = rows.map((row) => row.CURRENCY);
  if (new Set(codes).size !== codes.length) throw new ControlError(`a currency is listed twice: ${codes.join(", ")}`);
  const bases = rows.filter((row) => row.BASE === "Y").length;
  if (bases !== 1) throw new ControlError(`exactly one currency must be the base (BASE "Y"); ${bases} are`);
  return rows.map((row, i) => ({
    AMOUNT_CNT: "1",
    SORT: String((i + 1) * 100),
    BASE: "N",
    FULL_NAME: row.CURRENCY,
    LID: "ru",
    FORMAT_STRING: `# ${row.CURRENCY}`,
    DEC_POINT: ".",
    THOUSANDS_SEP: "&nbsp;",
    DECIMALS: "2",
    DATE_UPDATE: updated,
    // A key given as undefined keeps its default.
    ...(Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as CurrencyInput),
  }));
}

/** ISO 8601 with the portal's offset, as Bitrix24 formats dates (Moscow time here). */
export function bitrixDate(date: Date): string {
  const shifted = new Date(date.getTime() + 3 * 3_600_000);
  return `${shifted.toISOString().slice(0, 19)}+03:00`;
}

function asRecord(value: unknown, what: string): Params {
  if (value && typeof value === "object" && !Array.isArray(value)) return value as Params;
  if (Array.isArray(value)) return Object.fromEntries(value.map((v, i) => [String(i), v]));
  throw new RestError(400, "", `Parameter '${what}' must be array.`);
}

function asList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value && typeof value === "object") return Object.values(value);
  return value === undefined ? [] : [value];
}

function scalarString(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** How the caller authenticated: telephony.externalCall.* care (FACTS.md §2.9 [CONFLICT]). */
export interface CallerAuth {
  webhook: boolean;
  /** The webhook's user, or the user an app token stands for: FACTS-portals §2, ASSIGNED_BY_ID defaults to them. */
  userId?: number;
}

/** One Bitrix24 portal: CRM entities, user fields, timeline, to-dos, telephony. Every method mirrors the REST contract. */
export class Portal {
  items: Record<EntityName, Map<number, Item>> = { lead: new Map(), deal: new Map(), contact: new Map(), company: new Map() };
  userFieldsByEntity: Record<EntityName, UserField[]> = { lead: [], deal: [], contact: [], company: [] };
  comments: TimelineComment[] = [];
  /** To-dos (crm.activity.todo.add), each call adds one: FACTS-portals §6 "Not idempotent". */
  todos: { id: number; ownerTypeId: number; ownerId: number; deadline: string; title: string; responsibleId: string | null }[] = [];
  calls: ExternalCall[] = [];
  private nextIds: Record<EntityName, number> = { lead: 1, deal: 1, contact: 1, company: 1 };
  private nextMultiId = 1;
  private nextUserFieldId = 100;
  private nextCommentId = 1;
  private nextActivityId = 1;
  /**
   * FACTS.md §7: whether the duplicate index is updated synchronously on crm.lead.add is [UNCERTAIN], and newer
   * versions defer it ("Don't rely on findbycomm to dedupe two requests arriving milliseconds apart"). A phone
   * or email written now is found by findbycomm only this many milliseconds later; lists and gets see it at once.
   */
  findbycommLagMs = 0;
  /**
   * Fields an admin made required (FACTS-portals §5), per entity. REST skips the check unless an admin turned on
   * "required fields for applications" (`rest_enable_req_uf_check`, off by default); then an add fails with an
   * empty error code and one "is missing" line per field, joined with <br>.
   */
  required: Record<EntityName, string[]> = { lead: [], deal: [], contact: [], company: [] };
  restRequiredCheck = false;
  /** crm.settings.mode.get: 1 classic (leads), 2 simple (no leads; a lead added is converted at once). FACTS-portals §1. */
  crmMode: 1 | 2 = 1;
  /** "Repeat lead mode" (FACTS-portals §4): without it a lead linked to a client is an ordinary lead. */
  repeatLeadMode = true;
  /**
   * telephony.externalCall.register/finish: the docs say application context only (WRONG_AUTH_TYPE for a
   * webhook); the source allows webhooks (FACTS.md §2.9 [CONFLICT]). `webhook` picks the reading; `app: false`
   * is an app installed without the `telephony` scope.
   */
  telephony = { webhook: false, app: true };
  /** Dismissed users: telephony refuses them as USER_ID and user.get reports ACTIVE false (FACTS.md §2.9, FACTS-portals §8). */
  inactiveUsers = new Set<number>();
  /**
   * One REST request may run this long in the cloud, batch included (FACTS.md §4.1): a RECORD_URL download still
   * running then is cut off. What Bitrix24 answers past the limit no source says; the sandbox answers the
   * attach's own download error (HTTP code 0: no answer) [inference].
   */
  requestLimitMs = 60_000;
  /** This portal's people (a copy: an admin's rights taken away on one portal stay there). */
  users = SANDBOX_USERS.map((user) => ({ ...user }));
  /** The stage journal of leads and deals (crm.stagehistory.list), in the order the rows were written. */
  stageHistory: StageHistoryRow[] = [];
  private nextStageHistoryId = 1;
  /** Which of the reference's two answer shapes crm.stagehistory.list gives (its [CONFLICT]); "items" as in its sample. */
  stageHistoryShape: StageHistoryShape = "items";
  /** crm.currency.list; the row with BASE "Y" is what crm.currency.base.get names. */
  currencies: SandboxCurrency[] = currencyRows(DEFAULT_CURRENCIES, CURRENCY_DEFAULTS_UPDATED);

  constructor(private readonly now: () => Date = () => new Date()) {}

  get leads(): Map<number, Item> {
    return this.items.lead;
  }
  get userFields(): UserField[] {
    return this.userFieldsByEntity.lead;
  }
  set userFields(fields: UserField[]) {
    this.userFieldsByEntity.lead = fields;
  }
  get dealUserFields(): UserField[] {
    return this.userFieldsByEntity.deal;
  }
  get requiredFields(): string[] {
    return this.required.lead;
  }
  set requiredFields(fields: string[]) {
    this.required.lead = fields;
  }

  reset(): void {
    for (const entity of ENTITIES) {
      this.items[entity].clear();
      this.nextIds[entity] = 1;
    }
    this.comments = [];
    this.todos = [];
    this.calls = [];
    this.nextMultiId = 1;
    this.nextCommentId = 1;
    this.nextActivityId = 1;
    this.crmMode = 1;
    this.repeatLeadMode = true;
    this.telephony = { webhook: false, app: true };
    this.inactiveUsers.clear();
    this.requestLimitMs = 60_000;
    this.stageHistory = [];
    this.nextStageHistoryId = 1;
    this.stageHistoryShape = "items";
    this.currencies = currencyRows(DEFAULT_CURRENCIES, CURRENCY_DEFAULTS_UPDATED);
  }

  /** The base currency (FACTS-portals §2: a deal added without CURRENCY_ID is in it). */
  private baseCurrency(): string {
    return this.currencies.find((c) => c.BASE === "Y")?.CURRENCY ?? "";
  }

  /** Sandbox control: the portal's currencies, replaced as a whole (exactly one BASE "Y"). */
  setCurrencies(rows: CurrencyInput[]): void {
    this.currencies = currencyRows(rows, bitrixDate(this.now()));
  }

  /** Sandbox control: which shape crm.stagehistory.list answers in (the reference's [CONFLICT]). */
  setStageHistoryShape(shape: StageHistoryShape): void {
    this.stageHistoryShape = shape;
  }

  /**
   * Sandbox control: a journal row for a deal written at `at`, after every row there is (a higher ID), as a late or
   * backdated change looks to a reader; the deal itself stays where it is. TYPE_ID follows the stage (2 in progress,
   * 3 final) unless given; CATEGORY_ID is the funnel the stage belongs to.
   */
  addStageHistory(row: { ownerId: number; stageId: string; at: Date; typeId?: StageHistoryRow["TYPE_ID"] }): number {
    if (!this.items.deal.has(row.ownerId)) throw new ControlError(`no deal ${row.ownerId}`);
    const funnel = DEAL_FUNNELS.find((f) => f.stages.some((stage) => stage.id === row.stageId));
    if (!funnel) throw new ControlError(`no funnel has the stage ${row.stageId}`);
    const semantic = dealSemantic(row.stageId);
    const typeId = row.typeId ?? (semantic === "P" ? 2 : 3);
    return this.writeStageRow({ entityTypeId: 2, TYPE_ID: typeId, OWNER_ID: row.ownerId, CREATED_TIME: row.at, CATEGORY_ID: funnel.id, semantic, stage: row.stageId, creation: false });
  }

  /**
   * Sandbox control: a deal's DATE_CREATE and DATE_MODIFY as if it were made (or last changed) then. The journal row
   * its creation wrote moves with DATE_CREATE, as on a portal where both were written at once.
   */
  setDealDates(dealId: number, dates: { DATE_CREATE?: Date; DATE_MODIFY?: Date }): void {
    const deal = this.items.deal.get(dealId);
    if (!deal) throw new ControlError(`no deal ${dealId}`);
    if (dates.DATE_CREATE) {
      deal.DATE_CREATE = dates.DATE_CREATE;
      const created = this.stageHistory.find((row) => row.entityTypeId === 2 && row.OWNER_ID === dealId && row.creation);
      if (created) created.CREATED_TIME = dates.DATE_CREATE;
    }
    if (dates.DATE_MODIFY) deal.DATE_MODIFY = dates.DATE_MODIFY;
  }

  private writeStageRow(row: Omit<StageHistoryRow, "ID">): number {
    const id = this.nextStageHistoryId++;
    this.stageHistory.push({ ID: id, ...row });
    return id;
  }

  /** Where a lead or deal stands in the journal's terms: its stage (a lead's STATUS_ID), funnel and semantics. */
  private stageOf(entity: "lead" | "deal", item: Item): { stage: string; category: number | null; semantic: string } {
    if (entity === "lead") return { stage: item.fields.STATUS_ID ?? "NEW", category: null, semantic: leadSemantic(item.fields.STATUS_ID ?? null) };
    return { stage: item.fields.STAGE_ID ?? "NEW", category: Number(item.fields.CATEGORY_ID ?? 0), semantic: dealSemantic(item.fields.STAGE_ID ?? null) };
  }

  /** The journal row of an item's creation: TYPE_ID 1, or 3 when it was added in a final stage (see StageHistoryRow). */
  private recordCreation(entity: EntityName, item: Item, at: Date): void {
    if (entity !== "lead" && entity !== "deal") return;
    const now = this.stageOf(entity, item);
    const typeId = now.semantic === "P" ? 1 : 3;
    this.writeStageRow({
      entityTypeId: OWNER_TYPE_ID[entity] as 1 | 2,
      TYPE_ID: typeId,
      OWNER_ID: item.ID,
      CREATED_TIME: at,
      CATEGORY_ID: now.category,
      semantic: now.semantic,
      stage: now.stage,
      creation: true,
    });
  }

  /** The journal row of a change from `before`: 5 for another funnel, else 3 (final) or 2; none if nothing moved. */
  private recordTransition(entity: EntityName, item: Item, before: { stage: string; category: number | null }, at: Date): void {
    if (entity !== "lead" && entity !== "deal") return;
    const now = this.stageOf(entity, item);
    if (now.stage === before.stage && now.category === before.category) return;
    const entityTypeId = OWNER_TYPE_ID[entity] as 1 | 2;
    const latest = this.stageHistory.filter((row) => row.entityTypeId === entityTypeId && row.OWNER_ID === item.ID).at(-1);
    if (latest && latest.stage === now.stage && latest.CATEGORY_ID === now.category) return;
    const typeId = now.category !== before.category ? 5 : now.semantic === "P" ? 2 : 3;
    this.writeStageRow({ entityTypeId, TYPE_ID: typeId, OWNER_ID: item.ID, CREATED_TIME: at, CATEGORY_ID: now.category, semantic: now.semantic, stage: now.stage, creation: false });
  }

  private writableField(entity: EntityName, name: string): boolean {
    return STANDARD_FIELDS[entity].includes(name) || this.userFieldsByEntity[entity].some((uf) => uf.FIELD_NAME === name);
  }

  private applyMulti(item: Item, type: (typeof MULTI_FIELDS)[number], value: unknown, writtenAt: Date): void {
    for (const raw of asList(value)) {
      if (!raw || typeof raw !== "object") continue;
      const entry = raw as Params;
      const id = entry.ID === undefined ? null : Number(entry.ID);
      const text = scalarString(entry.VALUE)?.trim() ?? "";
      const valueType = String(entry.VALUE_TYPE ?? "WORK").toUpperCase();
      if (type === "EMAIL" && text !== "" && !EMAIL_SYNTAX.test(text)) {
        throw new RestError(400, "", `Invalid e-mail address: ${text}`);
      }
      const types = type === "PHONE" ? PHONE_TYPES : EMAIL_TYPES;
      if (id !== null) {
        // With ID: change that entry, or delete it when the value is empty.
        const existing = item[type].find((m) => m.ID === id);
        if (!existing) continue;
        if (text === "") item[type] = item[type].filter((m) => m.ID !== id);
        else Object.assign(existing, { VALUE: text, VALUE_TYPE: types.has(valueType) ? valueType : existing.VALUE_TYPE, indexedAt: this.indexedAt(writtenAt) });
      } else if (text !== "") {
        // Without ID: always a new entry, even if the same value is already there.
        item[type].push({ ID: this.nextMultiId++, VALUE: text.slice(0, 250), VALUE_TYPE: types.has(valueType) ? valueType : "WORK", indexedAt: this.indexedAt(writtenAt) });
      }
    }
  }

  /** A value written at `writtenAt` (a seeded item may be older than now) is found by findbycomm only after the lag. */
  private indexedAt(writtenAt: Date): number {
    return Math.min(writtenAt.getTime(), this.now().getTime()) + this.findbycommLagMs;
  }

  private applyFields(entity: EntityName, item: Item, fields: Params, writtenAt: Date = this.now()): void {
    for (const [name, value] of Object.entries(fields)) {
      if (name === "PHONE" || name === "EMAIL") {
        if (HAS_MULTI[entity]) this.applyMulti(item, name, value, writtenAt);
      } else if (name === "CONTACT_IDS" && (entity === "deal" || entity === "lead")) {
        // FACTS-portals §2: CONTACT_IDS is accepted on add/update; list and get show the first as CONTACT_ID.
        const first = asList(value)[0];
        if (first !== undefined) item.fields.CONTACT_ID = scalarString(first);
      } else if (this.writableField(entity, name)) {
        item.fields[name] = scalarString(value);
      }
    }
  }

  private checkRequired(entity: EntityName, item: Item): void {
    // Legacy core: a contact needs NAME or LAST_NAME, whatever the REST setting (FACTS-portals §3).
    if (entity === "contact" && !item.fields.NAME && !item.fields.LAST_NAME) throw new RestError(400, "", "The required field 'Name' is missing.<br />");
    if (!this.restRequiredCheck) return;
    const missing = this.required[entity].filter((name) => (name === "PHONE" || name === "EMAIL" ? item[name].length === 0 : !item.fields[name]));
    if (missing.length) throw new RestError(400, "", missing.map((name) => `The required field '${this.fieldTitle(entity, name)}' is missing.`).join("<br />"));
  }

  private fieldTitle(entity: EntityName, name: string): string {
    return this.userFieldsByEntity[entity].find((uf) => uf.FIELD_NAME === name)?.LABEL ?? name.charAt(0) + name.slice(1).toLowerCase().replace(/_/g, " ");
  }

  /** An item as REST adds it (`viaRest`, with the required-field checks) or as a person types it in. */
  add(entity: EntityName, fields: Params, createdAt: Date = this.now(), viaRest = false, callerId = 1): number {
    const defaults: Record<EntityName, Record<string, string>> = {
      lead: { STATUS_ID: "NEW", OPENED: "Y" },
      deal: { STAGE_ID: "NEW", CATEGORY_ID: "0", OPENED: "Y", OPPORTUNITY: "0.00", CURRENCY_ID: this.baseCurrency() },
      contact: { OPENED: "Y", TYPE_ID: "CLIENT" },
      company: { OPENED: "Y" },
    };
    const item: Item = { ID: this.nextIds[entity], fields: { ...defaults[entity] }, PHONE: [], EMAIL: [], DATE_CREATE: createdAt, DATE_MODIFY: createdAt };
    this.applyFields(entity, item, fields, createdAt);
    if (entity === "deal") {
      // FACTS-portals §2: a funnel that does not exist is refused; a stage not in the deal's funnel is dropped for its first.
      const funnel = DEAL_FUNNELS.find((f) => String(f.id) === String(item.fields.CATEGORY_ID ?? "0"));
      if (!funnel) throw new RestError(400, "", "Category not found");
      if (!funnel.stages.some((stage) => stage.id === item.fields.STAGE_ID)) item.fields.STAGE_ID = funnel.stages[0]?.id ?? "NEW";
    }
    item.fields.ASSIGNED_BY_ID ||= String(callerId);
    if (viaRest) this.checkRequired(entity, item);
    if (entity === "lead" || entity === "deal" || entity === "company") item.fields.TITLE ||= `${entity === "lead" ? "Lead" : entity === "deal" ? "Deal" : "Company"} #${item.ID}`;
    // FACTS-portals §4: a lead naming a client becomes a repeat lead, only when the portal's repeat-lead mode is on.
    if (entity === "lead") item.fields.IS_RETURN_CUSTOMER = this.repeatLeadMode && (item.fields.CONTACT_ID || item.fields.COMPANY_ID) ? "Y" : "N";
    this.nextIds[entity] += 1;
    this.items[entity].set(item.ID, item);
    this.recordCreation(entity, item, createdAt);
    if (entity === "lead" && this.crmMode === 2 && viaRest && item.fields.NAME) this.convertLead(item);
    return item.ID;
  }

  /** A deal a manager converted from a lead in the UI: the deal names the lead, the lead is CONVERTED. */
  markConverted(dealId: number, leadId: string): void {
    const deal = this.items.deal.get(dealId);
    if (deal) deal.fields.LEAD_ID = leadId;
    const lead = this.items.lead.get(Number(leadId));
    if (lead) this.convertStatus(lead);
  }

  /** A lead's move to CONVERTED, with its journal row. */
  private convertStatus(lead: Item): void {
    const before = this.stageOf("lead", lead);
    lead.fields.STATUS_ID = "CONVERTED";
    this.recordTransition("lead", lead, before, this.now());
  }

  /** Kept for tests and the seed route: a lead typed in by hand. */
  addLead(fields: Params, createdAt: Date = this.now(), viaRest = false): number {
    return this.add("lead", fields, createdAt, viaRest);
  }

  /**
   * FACTS-portals §1: in simple mode "the system automatically converts a new lead into a deal, and the lead
   * receives the CONVERTED status" (when NAME is filled); the deal is found by LEAD_ID. The contact made from
   * the lead's name and phone is what a conversion does in the UI [inference].
   */
  private convertLead(lead: Item): void {
    this.convertStatus(lead);
    const copy = (names: string[]) => Object.fromEntries(names.flatMap((n) => (lead.fields[n] ? [[n, lead.fields[n]]] : [])));
    const contactId = this.add("contact", {
      ...copy(["NAME", "LAST_NAME", "SOURCE_ID", "ASSIGNED_BY_ID", ...UTM]),
      PHONE: lead.PHONE.map((m) => ({ VALUE: m.VALUE })),
      EMAIL: lead.EMAIL.map((m) => ({ VALUE: m.VALUE })),
    });
    const dealId = this.add("deal", { ...copy(["TITLE", "SOURCE_ID", "ASSIGNED_BY_ID", "COMMENTS", ...UTM]), CONTACT_ID: contactId });
    const deal = this.items.deal.get(dealId);
    if (deal) deal.fields.LEAD_ID = String(lead.ID);
  }

  /** Everything `crm.<entity>.get` shows: strings, nulls, UF fields as "" when empty. */
  view(entity: EntityName, item: Item): Record<string, unknown> {
    const out: Record<string, unknown> = { ID: String(item.ID) };
    for (const name of [...STANDARD_FIELDS[entity], ...READ_ONLY_FIELDS[entity]]) out[name] = item.fields[name] ?? null;
    if (entity === "lead") out.STATUS_SEMANTIC_ID = leadSemantic(item.fields.STATUS_ID ?? null);
    if (entity === "deal") {
      out.STAGE_SEMANTIC_ID = dealSemantic(item.fields.STAGE_ID ?? null);
      out.CLOSED = out.STAGE_SEMANTIC_ID === "P" ? "N" : "Y";
    }
    out.DATE_CREATE = bitrixDate(item.DATE_CREATE);
    out.DATE_MODIFY = bitrixDate(item.DATE_MODIFY);
    if (HAS_MULTI[entity]) {
      out.HAS_PHONE = item.PHONE.length ? "Y" : "N";
      out.HAS_EMAIL = item.EMAIL.length ? "Y" : "N";
      for (const type of MULTI_FIELDS) {
        if (item[type].length) out[type] = item[type].map((m) => ({ ID: String(m.ID), VALUE_TYPE: m.VALUE_TYPE, VALUE: m.VALUE, TYPE_ID: type }));
      }
    }
    for (const uf of this.userFieldsByEntity[entity]) out[uf.FIELD_NAME] = item.fields[uf.FIELD_NAME] ?? "";
    return out;
  }

  private itemById(entity: EntityName, rawId: unknown): Item {
    const id = Number(rawId);
    if (!Number.isInteger(id) || id <= 0) throw new RestError(400, "", "ID is not defined or invalid.");
    const item = this.items[entity].get(id);
    if (!item) throw new RestError(400, "", "Not found");
    // FACTS-portals §1 [CONFLICT]: in simple mode a converted lead "can no longer be retrieved with crm.lead.get".
    if (entity === "lead" && this.crmMode === 2 && item.fields.STATUS_ID === "CONVERTED") throw new RestError(400, "", "Not found");
    return item;
  }

  private matches(view: Record<string, unknown>, filter: Params): boolean {
    for (const [rawKey, expected] of Object.entries(filter)) {
      const match = /^(>=|<=|!@|!=|@|>|<|=|!|%)?(.+)$/.exec(rawKey);
      if (!match) continue;
      const [, op = "=", field = ""] = match;
      const actual = view[field];
      const actualText = actual === null || actual === undefined ? "" : String(actual);
      const values = asList(expected).map((v) => String(v));
      const single = scalarString(expected) ?? "";
      const compare = (a: string, b: string) => (field.startsWith("DATE_") || field === "CREATED_TIME" ? Date.parse(a) - Date.parse(b) : Number(a) - Number(b));
      const ok = {
        "=": actualText === single,
        "!": actualText !== single,
        "!=": actualText !== single,
        "@": values.includes(actualText),
        "!@": !values.includes(actualText),
        ">=": compare(actualText, single) >= 0,
        "<=": compare(actualText, single) <= 0,
        ">": compare(actualText, single) > 0,
        "<": compare(actualText, single) < 0,
        "%": actualText.toLowerCase().includes(single.toLowerCase()),
      }[op];
      if (!ok) return false;
    }
    return true;
  }

  private select(view: Record<string, unknown>, select: string[]): Record<string, unknown> {
    if (select.length === 0) select = ["*"];
    const out: Record<string, unknown> = {};
    for (const name of select) {
      if (name === "*") {
        for (const [k, v] of Object.entries(view)) if (!k.startsWith("UF_") && k !== "PHONE" && k !== "EMAIL") out[k] = v;
      } else if (name === "UF_*") {
        for (const [k, v] of Object.entries(view)) if (k.startsWith("UF_")) out[k] = v;
      } else if (name in view) {
        out[name] = view[name];
      }
    }
    out.ID = view.ID;
    return out;
  }

  private list(entity: EntityName, params: Params): { result: unknown; total: number; next?: number } {
    const filter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
    const order = params.order === undefined ? {} : asRecord(params.order, "order");
    const select = asList(params.select).map(String);
    const start = Number(params.start ?? 0);
    let rows = [...this.items[entity].values()].map((item) => this.view(entity, item)).filter((view) => this.matches(view, filter));
    const [orderField = "ID", direction = "ASC"] = Object.entries(order)[0] ?? [];
    const sign = String(direction).toUpperCase() === "DESC" ? -1 : 1;
    rows.sort((a, b) => {
      const x = String(a[orderField] ?? "");
      const y = String(b[orderField] ?? "");
      return sign * (orderField === "ID" ? Number(x) - Number(y) : x.localeCompare(y));
    });
    const total = rows.length;
    rows = rows.slice(Math.max(0, start), Math.max(0, start) + LIST_PAGE_SIZE);
    const next = start + LIST_PAGE_SIZE < total ? start + LIST_PAGE_SIZE : undefined;
    return { result: rows.map((row) => this.select(row, select)), total, ...(next === undefined ? {} : { next }) };
  }

  private describeFields(entity: EntityName): Record<string, unknown> {
    const describe = (name: string, type: string, extra: Params = {}) => [
      name,
      {
        type,
        isRequired: this.required[entity].includes(name),
        isReadOnly: false,
        isImmutable: false,
        isMultiple: false,
        isDynamic: name.startsWith("UF_"),
        title: this.fieldTitle(entity, name),
        ...extra,
      },
    ];
    return Object.fromEntries([
      ["ID", { type: "integer", isRequired: false, isReadOnly: true, isImmutable: false, isMultiple: false, isDynamic: false, title: "ID" }],
      ...STANDARD_FIELDS[entity].map((name) => describe(name, "string")),
      ...(HAS_MULTI[entity] ? MULTI_FIELDS.map((name) => describe(name, "crm_multifield", { isMultiple: true })) : []),
      ...this.userFieldsByEntity[entity].map((uf) => describe(uf.FIELD_NAME, uf.USER_TYPE_ID)),
    ]);
  }

  private userFieldView(entity: EntityName, uf: UserField): Record<string, unknown> {
    return {
      ID: String(uf.ID),
      ENTITY_ID: `CRM_${entity.toUpperCase()}`,
      FIELD_NAME: uf.FIELD_NAME,
      USER_TYPE_ID: uf.USER_TYPE_ID,
      XML_ID: uf.XML_ID,
      SORT: uf.SORT,
      MULTIPLE: uf.MULTIPLE,
      MANDATORY: uf.MANDATORY,
      SHOW_FILTER: "N",
      SHOW_IN_LIST: "Y",
      EDIT_IN_LIST: "Y",
      IS_SEARCHABLE: "N",
      SETTINGS: {},
      EDIT_FORM_LABEL: uf.LABEL,
      LIST_COLUMN_LABEL: uf.LABEL,
      LIST_FILTER_LABEL: uf.LABEL,
      ERROR_MESSAGE: null,
      HELP_MESSAGE: null,
    };
  }

  /** crm.<entity>.* for the four CRM entities; null when `method` is not one of them. */
  private entityMethod(method: string, params: Params, auth: CallerAuth): { result: unknown; total?: number; next?: number } | null {
    const match = /^crm\.(lead|deal|contact|company)\.(add|update|get|list|fields|delete|userfield\.list|userfield\.add)$/.exec(method);
    if (!match) return null;
    const entity = match[1] as EntityName;
    switch (match[2]) {
      case "add":
        return { result: this.add(entity, asRecord(params.fields ?? {}, "fields"), this.now(), true, auth.userId ?? 1) };
      case "update": {
        const item = this.itemById(entity, params.id ?? params.ID);
        const fields = asRecord(params.fields ?? {}, "fields");
        const funnelOf = (id: unknown) => DEAL_FUNNELS.find((f) => String(f.id) === String(id));
        if (entity === "deal" && fields.CATEGORY_ID !== undefined && !funnelOf(fields.CATEGORY_ID)) throw new RestError(400, "", "Category not found");
        const before = entity === "lead" || entity === "deal" ? this.stageOf(entity, item) : null;
        this.applyFields(entity, item, fields);
        if (entity === "deal" && before) {
          // FACTS-portals §2: a STAGE_ID not in the deal's funnel is dropped (the stage stays); a deal moved to
          // another funnel without one of its stages lands on its first stage, as a new deal does.
          const funnel = funnelOf(item.fields.CATEGORY_ID ?? "0");
          const moved = Number(item.fields.CATEGORY_ID ?? 0) !== before.category;
          if (funnel && !funnel.stages.some((stage) => stage.id === item.fields.STAGE_ID)) item.fields.STAGE_ID = moved ? (funnel.stages[0]?.id ?? "NEW") : before.stage;
        }
        item.DATE_MODIFY = this.now();
        if (before) this.recordTransition(entity, item, before, item.DATE_MODIFY);
        return { result: true };
      }
      case "get":
        return { result: this.view(entity, this.itemById(entity, params.id ?? params.ID)) };
      case "list":
        return this.list(entity, params);
      case "fields":
        return { result: this.describeFields(entity) };
      case "delete": {
        const id = this.itemById(entity, params.id ?? params.ID).ID;
        this.items[entity].delete(id);
        // Bitrix24 deletes an item's stage journal with it (registerItemDelete, abstractstagehistory.php).
        this.stageHistory = this.stageHistory.filter((row) => !(row.entityTypeId === OWNER_TYPE_ID[entity] && row.OWNER_ID === id));
        return { result: true };
      }
      case "userfield.list": {
        // FACTS.md §2.6: each entity has user fields of its own, with the same methods and rules.
        const filter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
        const rows = this.userFieldsByEntity[entity].filter((uf) => Object.entries(filter).every(([k, v]) => k === "LANG" || String((uf as unknown as Params)[k]) === String(v)));
        return { result: rows.map((uf) => this.userFieldView(entity, uf)), total: rows.length };
      }
      default: {
        const list = this.userFieldsByEntity[entity];
        const fields = asRecord(params.fields ?? params, "fields");
        if (!fields.USER_TYPE_ID) throw new RestError(400, "", "The 'USER_TYPE_ID' field is not found.");
        if (!fields.FIELD_NAME) throw new RestError(400, "", "The 'FIELD_NAME' field is not found.");
        let name = String(fields.FIELD_NAME).toUpperCase();
        if (!name.startsWith("UF_CRM_")) name = `UF_CRM_${name.replace(/^UF_/, "")}`;
        if (!/^[A-Z0-9_]+$/.test(name) || name.length > 50) throw new RestError(400, "ERROR_CORE", "Invalid field name.");
        if (list.some((uf) => uf.FIELD_NAME === name)) throw new RestError(400, "ERROR_CORE", `A field with the code "${name}" already exists.`);
        const uf: UserField = {
          ID: this.nextUserFieldId++,
          FIELD_NAME: name,
          USER_TYPE_ID: String(fields.USER_TYPE_ID),
          LABEL: String(fields.LABEL ?? fields.EDIT_FORM_LABEL ?? name),
          MULTIPLE: String(fields.MULTIPLE ?? "N"),
          MANDATORY: String(fields.MANDATORY ?? "N"),
          SORT: String(fields.SORT ?? "100"),
          XML_ID: fields.XML_ID === undefined ? null : String(fields.XML_ID),
        };
        list.push(uf);
        return { result: uf.ID };
      }
    }
  }

  /**
   * FACTS.md §2.5: `entity_type` LEAD, CONTACT or COMPANY, or none for all three (keys only where there are
   * hits, `[]` for none); "If 20 or more duplicates are found for one object type, the other types are not returned."
   */
  private findByComm(params: Params): { result: unknown } {
    const type = String(params.type ?? params.TYPE ?? "").toUpperCase();
    if (!type) throw new RestError(400, "Communication type is not defined", "Parameter 'type' is required.");
    if (type !== "PHONE" && type !== "EMAIL") throw new RestError(400, "", `Communication type '${type}' is not supported in current context.`);
    const rawValues = params.values ?? params.VALUES;
    if (!Array.isArray(rawValues) && !(rawValues && typeof rawValues === "object")) throw new RestError(400, "", "Communication values is not defined.");
    const rawEntity = params.entity_type ?? params.ENTITY_TYPE ?? params.EntityType;
    const wantedTypes: string[] = rawEntity === undefined || rawEntity === "" ? ["lead", "contact", "company"] : [String(rawEntity).toLowerCase()];
    if (wantedTypes.includes("deal")) throw new RestError(400, "", "Deal is not supported in current context.");
    const normalize = type === "PHONE" ? bitrixNormalizePhone : (v: string) => v.trim().toLowerCase();
    const wanted = new Set(
      asList(rawValues)
        .slice(0, 20)
        .map((v) => normalize(String(v)))
        .filter(Boolean),
    );
    const now = this.now().getTime();
    const result: Record<string, number[]> = {};
    for (const entity of wantedTypes as EntityName[]) {
      if (!HAS_MULTI[entity]) continue;
      const ids = [...this.items[entity].values()].filter((item) => item[type].some((m) => m.indexedAt <= now && wanted.has(normalize(m.VALUE)))).map((item) => item.ID);
      if (ids.length === 0) continue;
      result[entity.toUpperCase()] = ids.slice(0, 20);
      if (ids.length >= 20) return { result: { [entity.toUpperCase()]: ids.slice(0, 20) } };
    }
    return { result: Object.keys(result).length ? result : [] };
  }

  private entityOfOwner(ownerTypeId: number, ownerId: number): boolean {
    const entity = ENTITIES.find((e) => OWNER_TYPE_ID[e] === ownerTypeId);
    return entity !== undefined && this.items[entity].has(ownerId);
  }

  private activeUser(raw: unknown): number {
    const user = this.users.find((u) => String(u.ID) === String(raw) && !this.inactiveUsers.has(u.ID));
    if (!user) throw new RestError(400, "ERROR_CORE", raw === undefined || raw === "" ? "USER_ID or USER_PHONE_INNER should be set" : "User is not found or is not active");
    return user.ID;
  }

  private telephonyAllowed(auth: CallerAuth): void {
    if (auth.webhook ? !this.telephony.webhook : !this.telephony.app) {
      if (auth.webhook) throw new RestError(400, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method");
      throw new RestError(401, "insufficient_scope", "The request requires higher privileges than provided by the access token");
    }
  }

  /** attachRecord's checks, in the docs' order: after finish; a URL or a FILENAME; wav or mp3 only (FACTS-portals §7). */
  private attachTarget(params: Params, auth: CallerAuth): { call: ExternalCall; url: string | null; fileName: string } {
    this.telephonyAllowed(auth);
    const call = this.calls.find((c) => c.CALL_ID === String(params.CALL_ID ?? ""));
    if (!call?.finished) throw new RestError(400, "ERROR_CORE", "Call is not found in the statistic table. It looks like it is not finished yet.");
    const url = params.RECORD_URL === undefined ? null : String(params.RECORD_URL);
    // In URL mode FILENAME defaults to the link's own name.
    const fileName = String(params.FILENAME ?? url?.split("?")[0]?.split("/").pop() ?? "");
    if (!url && !params.FILENAME) throw new RestError(400, "ERROR_CORE", "Required parameters are not set. Request should contain either URL or FILENAME parameter");
    if (!/\.(mp3|wav)$/i.test(fileName)) throw new RestError(400, "ERROR_CORE", "Wrong file extension. Only wav and mp3 are allowed");
    return { call, url, fileName };
  }

  /**
   * attachRecord with RECORD_URL: "the account will make one attempt to download the record from the specified
   * address. In case of failure, the method will return an error" (docs of telephony.externalCall.attachRecord),
   * "Server returns HTTP error code {N}" (FACTS-portals §7). The download runs inside the request, so it counts in
   * the request's 60 s (FACTS.md §4.1; `deadline`) and a batch's downloads add up. Nothing says Bitrix24 looks at
   * what it got: a sign-in page a link redirects to is kept as the "recording" under FILENAME.
   */
  async attachRecordFromUrl(params: Params, auth: CallerAuth, fetchRecord: RecordFetch, deadline: number): Promise<{ result: unknown }> {
    const { call, fileName } = this.attachTarget(params, auth);
    const url = String(params.RECORD_URL);
    const signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    const cutOff = new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
    let got: { status: number; contentType: string | null; bytes: number };
    try {
      got = await Promise.race([
        (async () => {
          const response = await fetchRecord(url, signal);
          return { status: response.status, contentType: response.headers.get("content-type"), bytes: (await response.arrayBuffer()).byteLength };
        })(),
        cutOff,
      ]);
    } catch {
      // No HTTP answer at all (no connection, or the request's time ran out): the client's status stays 0.
      throw new RestError(400, "ERROR_CORE", "Server returns HTTP error code 0");
    }
    if (got.status < 200 || got.status >= 300) throw new RestError(400, "ERROR_CORE", `Server returns HTTP error code ${got.status}`);
    call.record = { url, fileName, contentType: got.contentType, bytes: got.bytes };
    return { result: { FILE_ID: 9000 + this.calls.indexOf(call) } };
  }

  /** telephony.externalCall.* (FACTS.md §2.9, FACTS-portals §7). */
  private telephonyMethod(method: string, params: Params, auth: CallerAuth): { result: unknown } {
    this.telephonyAllowed(auth);
    const findCall = () => this.calls.find((c) => c.CALL_ID === String(params.CALL_ID ?? ""));
    switch (method) {
      case "telephony.externalCall.register": {
        const userId = this.activeUser(params.USER_ID);
        const type = Number(params.TYPE);
        if (![1, 2, 3, 4, 5].includes(type)) throw new RestError(400, "ERROR_CORE", "Unknown TYPE");
        const phone = String(params.PHONE_NUMBER ?? "").replace(/[^\d+]/g, "");
        if (!/\d{5,}/.test(phone)) throw new RestError(400, "ERROR_CORE", "Unsupported phone number format");
        const external = params.EXTERNAL_CALL_ID === undefined ? null : String(params.EXTERNAL_CALL_ID);
        const now = this.now().getTime();
        const again = external ? this.calls.find((c) => c.EXTERNAL_CALL_ID === external && now - c.registeredAt < REREGISTER_WINDOW_MS) : undefined;
        const entityType = params.CRM_ENTITY_TYPE === undefined ? null : String(params.CRM_ENTITY_TYPE).toUpperCase();
        const call: ExternalCall = again ?? {
          CALL_ID: `externalCall.${Math.random().toString(16).slice(2).padEnd(32, "0")}.${Math.floor(now / 1000)}`,
          EXTERNAL_CALL_ID: external,
          USER_ID: userId,
          PHONE_NUMBER: phone,
          TYPE: type,
          CALL_START_DATE: params.CALL_START_DATE === undefined ? null : String(params.CALL_START_DATE),
          CRM_ENTITY_TYPE: entityType,
          CRM_ENTITY_ID: params.CRM_ENTITY_ID === undefined ? null : Number(params.CRM_ENTITY_ID),
          registeredAt: now,
          finished: null,
          record: null,
        };
        if (!again) this.calls.push(call);
        return { result: { CALL_ID: call.CALL_ID, CRM_CREATED_LEAD: null, CRM_CREATED_ENTITIES: [], CRM_ENTITY_TYPE: call.CRM_ENTITY_TYPE, CRM_ENTITY_ID: call.CRM_ENTITY_ID } };
      }
      case "telephony.externalCall.finish": {
        const userId = this.activeUser(params.USER_ID);
        const call = findCall();
        // Not documented: what a second finish answers. The call has left the active calls, so: not found.
        if (!call || call.finished) throw new RestError(400, "ERROR_CORE", "Call is not found");
        const linked = call.CRM_ENTITY_TYPE && call.CRM_ENTITY_ID !== null ? this.entityOfOwner(OWNER_TYPE_ID[call.CRM_ENTITY_TYPE.toLowerCase() as EntityName] ?? 0, call.CRM_ENTITY_ID) : false;
        // "The activity is created if the call is linked to a contact, company, lead, or deal" (FACTS-portals §7).
        call.finished = { DURATION: Number(params.DURATION ?? 0), STATUS_CODE: String(params.STATUS_CODE ?? "200"), activityId: linked ? this.nextActivityId++ : null };
        if (params.RECORD_URL) call.record = { url: String(params.RECORD_URL), fileName: String(params.RECORD_URL).split("/").pop() ?? "" };
        return {
          result: {
            CALL_ID: call.CALL_ID,
            EXTERNAL_CALL_ID: call.EXTERNAL_CALL_ID,
            PORTAL_USER_ID: userId,
            PHONE_NUMBER: call.PHONE_NUMBER,
            INCOMING: String(call.TYPE),
            CALL_DURATION: call.finished.DURATION,
            CALL_FAILED_CODE: call.finished.STATUS_CODE,
            CRM_ACTIVITY_ID: call.finished.activityId,
            CRM_ENTITY_TYPE: call.CRM_ENTITY_TYPE,
            CRM_ENTITY_ID: call.CRM_ENTITY_ID,
            ID: this.calls.indexOf(call) + 1,
          },
        };
      }
      default: {
        // attachRecord without a link (FILENAME, with or without FILE_CONTENT); a link goes to attachRecordFromUrl.
        const { call, url, fileName } = this.attachTarget(params, auth);
        if (url !== null) throw new Error("attachRecord with RECORD_URL downloads: call it through callAsync");
        call.record = { url, fileName };
        return { result: { FILE_ID: 9000 + this.calls.indexOf(call) } };
      }
    }
  }

  /** Runs one REST method as `call` does, and the one that waits for a download (attachRecord with RECORD_URL). */
  async callAsync(method: string, params: Params, auth: CallerAuth, io: { fetchRecord: RecordFetch; deadline: number }): Promise<{ result: unknown; total?: number; next?: number }> {
    if (method === "telephony.externalCall.attachRecord" && params.RECORD_URL !== undefined) return this.attachRecordFromUrl(params, auth, io.fetchRecord, io.deadline);
    return this.call(method, params, auth);
  }

  /** Runs one REST method; returns `{result, total?, next?}` or throws RestError. */
  call(method: string, params: Params, auth: CallerAuth = { webhook: true }): { result: unknown; total?: number; next?: number } {
    const crud = this.entityMethod(method, params, auth);
    if (crud) return crud;
    if (method.startsWith("telephony.externalCall.") && ["register", "finish", "attachRecord"].includes(method.slice(23))) return this.telephonyMethod(method, params, auth);
    switch (method) {
      case "crm.settings.mode.get":
        return { result: this.crmMode };
      case "crm.stagehistory.list":
        return this.stageHistoryList(params);
      case "crm.currency.base.get":
        // FACTS-portals §11: the base currency's code, a bare string.
        return { result: this.baseCurrency() };
      case "crm.currency.list":
        return this.currencyList(params);
      case "crm.duplicate.findbycomm":
        return this.findByComm(params);
      case "crm.activity.todo.add": {
        // FACTS-portals §6: camelCase params; ownerTypeId 1 lead … 4 company; deadline required.
        const ownerTypeId = Number(params.ownerTypeId);
        const ownerId = Number(params.ownerId);
        if (!params.ownerTypeId || !params.ownerId || !params.deadline) throw new RestError(400, "100", "Required fields are not specified");
        if (Number.isNaN(Date.parse(String(params.deadline)))) throw new RestError(400, "WRONG_DATETIME_FORMAT", "Wrong datetime format");
        if (!this.entityOfOwner(ownerTypeId, ownerId)) throw new RestError(400, "OWNER_NOT_FOUND", "Owner not found");
        const todo = {
          id: this.todos.length + 1,
          ownerTypeId,
          ownerId,
          deadline: String(params.deadline),
          title: String(params.title ?? ""),
          responsibleId: params.responsibleId === undefined ? null : String(params.responsibleId),
        };
        this.todos.push(todo);
        return { result: { id: todo.id } };
      }
      case "crm.timeline.comment.add": {
        if (params.FIELDS !== undefined && params.fields === undefined) throw new RestError(400, "", "Required fields are not specified: fields");
        const fields = asRecord(params.fields ?? {}, "fields");
        const entityType = String(fields.ENTITY_TYPE ?? "").toLowerCase();
        const entityId = Number(fields.ENTITY_ID);
        const comment = scalarString(fields.COMMENT)?.trim() ?? "";
        if (!entityType || !Number.isInteger(entityId)) throw new RestError(400, "100", "Required fields are not specified: ENTITY_ID, ENTITY_TYPE");
        if (comment === "") throw new RestError(400, "INVALID_ARG_VALUE", "Comment is empty");
        if (!ENTITIES.includes(entityType as EntityName) || !this.items[entityType as EntityName].has(entityId)) throw new RestError(400, "NOT_FOUND", "Not found.");
        const row: TimelineComment = { ID: this.nextCommentId++, ENTITY_ID: entityId, ENTITY_TYPE: entityType, COMMENT: comment, CREATED: this.now() };
        this.comments.push(row);
        return { result: row.ID };
      }
      case "crm.timeline.comment.list": {
        const filter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
        const rows = this.comments.filter(
          (c) => (filter.ENTITY_ID === undefined || c.ENTITY_ID === Number(filter.ENTITY_ID)) && (filter.ENTITY_TYPE === undefined || c.ENTITY_TYPE === String(filter.ENTITY_TYPE).toLowerCase()),
        );
        return { result: rows.map((c) => ({ ID: String(c.ID), ENTITY_ID: String(c.ENTITY_ID), ENTITY_TYPE: c.ENTITY_TYPE, COMMENT: c.COMMENT, CREATED: bitrixDate(c.CREATED) })), total: rows.length };
      }
      case "crm.category.list": {
        // The universal API's shape ({categories: […]}, camelCase) [inferred from crm.item.*; FACTS-portals §2 names the method].
        if (Number(params.entityTypeId) !== 2) return { result: { categories: [] }, total: 0 };
        const categories = DEAL_FUNNELS.map((f, i) => ({ id: f.id, name: f.name, sort: (i + 1) * 100, entityTypeId: 2, isDefault: f.id === 0 ? "Y" : "N" }));
        return { result: { categories }, total: categories.length };
      }
      case "crm.status.list": {
        // FACTS-portals §2: a funnel's stages by ENTITY_ID "DEAL_STAGE" (funnel 0) or "DEAL_STAGE_<id>".
        const filter = (params.filter ?? {}) as Params;
        const entityId = String(filter.ENTITY_ID ?? "");
        const funnel = DEAL_FUNNELS.find((f) => entityId === (f.id === 0 ? "DEAL_STAGE" : `DEAL_STAGE_${f.id}`));
        const rows = (funnel?.stages ?? []).map((stage, i) => ({
          ID: String(100 * (funnel?.id ?? 0) + i + 1),
          ENTITY_ID: entityId,
          STATUS_ID: stage.id,
          NAME: stage.name,
          SORT: String((i + 1) * 10),
          CATEGORY_ID: String(funnel?.id ?? 0),
          SEMANTICS: dealSemantic(stage.id) === "P" ? null : dealSemantic(stage.id),
        }));
        return { result: rows, total: rows.length };
      }
      case "user.get": {
        // FACTS-portals: user.get takes `FILTER` (upper case; EMAIL, ACTIVE …) and `ID`.
        const filter = (params.FILTER ?? {}) as Params;
        const wanted = params.ID ?? filter.ID;
        const email = filter.EMAIL === undefined ? undefined : String(filter.EMAIL).toLowerCase();
        // ACTIVE true "excludes terminated users" (FACTS-portals §8).
        const activeOnly = filter.ACTIVE === true || ["true", "Y", "1"].includes(String(filter.ACTIVE));
        const rows = this.users.filter(
          (u) => (wanted === undefined || String(u.ID) === String(wanted)) && (email === undefined || u.EMAIL.toLowerCase() === email) && !(activeOnly && this.inactiveUsers.has(u.ID)),
        );
        return { result: rows.map((u) => ({ ID: String(u.ID), NAME: u.NAME, LAST_NAME: u.LAST_NAME, EMAIL: u.EMAIL, ACTIVE: !this.inactiveUsers.has(u.ID) })), total: rows.length };
      }
      default:
        throw new RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
    }
  }

  /**
   * crm.stagehistory.list (loop-docs/api-reference__crm__crm-stage-history-list.txt): `entityTypeId` 1 or 2 (5 and 31
   * answer an empty list: no invoices here; anything else ENTITY_TYPE_NOT_SUPPORTED, l.64); `filter` with the list
   * operators, a plain array meaning "any of" as `@` does (l.17); `order` and `select` on the row's fields, others
   * INVALID_ARG_VALUE (l.65-66); 50 rows a page from `start`, with `total` and `next` as every list method. The
   * rows nest in `result.items` or are `result` itself, as `stageHistoryShape` says (the reference's [CONFLICT]).
   * Ids are integers, as the sample shows them (l.33-39). Not modelled: the LIKE forms other than `%`.
   */
  private stageHistoryList(params: Params): { result: unknown; total: number; next?: number } {
    // Bitrix24's action binder on a missing or non-integer argument (the "100" errors of crm.item.* and others) [inference].
    if (params.entityTypeId === undefined || params.entityTypeId === "") throw new RestError(400, "100", "Could not find value for parameter {entityTypeId}");
    const entityTypeId = Number(params.entityTypeId);
    if (!Number.isInteger(entityTypeId)) throw new RestError(400, "100", `Invalid value ${scalarString(params.entityTypeId)} to match with parameter {entityTypeId}. Should be value of type int.`);
    const shape = (rows: unknown[]) => (this.stageHistoryShape === "items" ? { items: rows } : rows);
    if (EMPTY_HISTORY_TYPES.has(entityTypeId)) return { result: shape([]), total: 0 };
    if (entityTypeId !== 1 && entityTypeId !== 2) {
      const name = ENTITIES.find((e) => OWNER_TYPE_ID[e] === entityTypeId)?.toUpperCase() ?? String(entityTypeId);
      throw new RestError(400, "ENTITY_TYPE_NOT_SUPPORTED", `Entity type ${name} is not supported`);
    }
    const allowed = STAGE_HISTORY_FIELDS[entityTypeId];
    const rawFilter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
    const filter: Params = {};
    for (const [key, value] of Object.entries(rawFilter)) {
      const [, op = "", field = ""] = /^(!%=|!=%|!%|=%|%=|>=|<=|!@|!=|@|>|<|=|!|%)?(.*)$/.exec(key) ?? [];
      if (!allowed.includes(field)) throw new RestError(400, "INVALID_ARG_VALUE", `Invalid filter: field '${field}' is not allowed in filter`);
      const many = Array.isArray(value) || (value !== null && typeof value === "object");
      filter[many && (op === "" || op === "=") ? `@${field}` : many && (op === "!" || op === "!=") ? `!@${field}` : key] = value;
    }
    const order = Object.entries(params.order === undefined ? { ID: "ASC" } : asRecord(params.order, "order")).map(([field, direction]) => {
      if (!allowed.includes(field)) throw new RestError(400, "INVALID_ARG_VALUE", `Invalid order: field '${field}' is not allowed in order`);
      const dir = String(direction).toUpperCase();
      if (dir !== "ASC" && dir !== "DESC") throw new RestError(400, "INVALID_ARG_VALUE", "Invalid order: allowed sort directions are ASC, DESC");
      return { field, sign: dir === "DESC" ? -1 : 1 };
    });
    const select = asList(params.select)
      .map(String)
      .filter((name) => allowed.includes(name));
    const [stageField, semanticField] = entityTypeId === 1 ? ["STATUS_ID", "STATUS_SEMANTIC_ID"] : ["STAGE_ID", "STAGE_SEMANTIC_ID"];
    const rows = this.stageHistory
      .filter((row) => row.entityTypeId === entityTypeId)
      .map(
        (row): Record<string, unknown> => ({
          ID: row.ID,
          TYPE_ID: row.TYPE_ID,
          OWNER_ID: row.OWNER_ID,
          CREATED_TIME: bitrixDate(row.CREATED_TIME),
          ...(entityTypeId === 2 ? { CATEGORY_ID: row.CATEGORY_ID } : {}),
          [semanticField]: row.semantic,
          [stageField]: row.stage,
        }),
      )
      .filter((view) => this.matches(view, filter));
    const value = (view: Record<string, unknown>, field: string) =>
      NUMERIC_HISTORY_FIELDS.has(field) ? Number(view[field]) : field === "CREATED_TIME" ? Date.parse(String(view[field])) : String(view[field] ?? "");
    rows.sort((a, b) => {
      for (const { field, sign } of order) {
        const x = value(a, field);
        const y = value(b, field);
        if (x !== y) return sign * (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y)));
      }
      return 0;
    });
    const start = Math.max(0, Number(params.start ?? 0) || 0);
    const page = rows.slice(start, start + LIST_PAGE_SIZE).map((view) => (select.length ? Object.fromEntries(select.map((name) => [name, view[name]])) : view));
    const next = start + LIST_PAGE_SIZE < rows.length ? start + LIST_PAGE_SIZE : undefined;
    return { result: shape(page), total: rows.length, ...(next === undefined ? {} : { next }) };
  }

  /**
   * crm.currency.list (FACTS-portals §11; its docs: `order` by lower- or upper-case field names, asc/desc; filter,
   * select and paging not supported; `total` "currently always has a value of 0"). Sorted by SORT when not asked.
   */
  private currencyList(params: Params): { result: unknown; total: number } {
    const order = Object.entries(params.order === undefined ? { SORT: "asc" } : asRecord(params.order, "order"));
    const numeric = new Set(["SORT", "AMOUNT", "AMOUNT_CNT", "DECIMALS"]);
    const rows = [...this.currencies].sort((a, b) => {
      for (const [rawField, direction] of order) {
        const field = rawField.toUpperCase() as keyof SandboxCurrency;
        const sign = String(direction).toUpperCase() === "DESC" ? -1 : 1;
        const x = String(a[field] ?? "");
        const y = String(b[field] ?? "");
        const diff = numeric.has(field) ? Number(x) - Number(y) : x.localeCompare(y);
        if (diff) return sign * diff;
      }
      return 0;
    });
    return { result: rows.map((row) => ({ ...row })), total: 0 };
  }

  /** What the timeline of an item shows: comments, to-dos and calls (with their recordings). */
  private timeline(entity: EntityName, id: number) {
    const owner = OWNER_TYPE_ID[entity];
    return {
      TIMELINE_COMMENTS: this.comments.filter((c) => c.ENTITY_TYPE === entity && c.ENTITY_ID === id).map((c) => c.COMMENT),
      TODOS: this.todos.filter((t) => t.ownerTypeId === owner && t.ownerId === id).map(({ title, deadline, responsibleId }) => ({ title, deadline, responsibleId })),
      CALLS: this.calls
        .filter((c) => c.finished?.activityId && c.CRM_ENTITY_TYPE === entity.toUpperCase() && c.CRM_ENTITY_ID === id)
        .map((c) => ({
          callId: c.CALL_ID,
          type: c.TYPE,
          userId: c.USER_ID,
          duration: c.finished?.DURATION,
          statusCode: c.finished?.STATUS_CODE,
          record: c.record?.url ?? c.record?.fileName ?? null,
          // What Bitrix24 downloaded for the player: a sign-in page here is a "recording" that does not play.
          recordType: c.record?.contentType ?? null,
        })),
    };
  }

  /** Leads with their timelines, for tests and the sandbox page. Converted leads of a simple-mode portal included. */
  snapshot(entity: EntityName = "lead"): Record<string, unknown>[] {
    return [...this.items[entity].values()].map((item) => ({ ...this.view(entity, item), ...this.timeline(entity, item.ID) }));
  }
}

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

interface Lead {
  ID: number;
  fields: Record<string, string | null>;
  PHONE: MultiValue[];
  EMAIL: MultiValue[];
  DATE_CREATE: Date;
  DATE_MODIFY: Date;
}

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

type Params = Record<string, unknown>;

/** The portal's people: an administrator, and a sales manager who is not one. */
export const SANDBOX_USERS = [
  { ID: 1, NAME: "Ivan", LAST_NAME: "Admin", EMAIL: "admin@shop.example.ru", ADMIN: true },
  { ID: 2, NAME: "Maria", LAST_NAME: "Sales", EMAIL: "maria@shop.example.ru", ADMIN: false },
  { ID: 3, NAME: "Oleg", LAST_NAME: "Newcomer", EMAIL: "oleg@shop.example.ru", ADMIN: false },
];

const STANDARD_FIELDS = [
  "TITLE", "HONORIFIC", "NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_TITLE", "SOURCE_ID", "SOURCE_DESCRIPTION",
  "STATUS_ID", "STATUS_DESCRIPTION", "POST", "COMMENTS", "CURRENCY_ID", "OPPORTUNITY", "ASSIGNED_BY_ID", "OPENED",
  "ORIGINATOR_ID", "ORIGIN_ID", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM",
];
const MULTI_FIELDS = ["PHONE", "EMAIL"] as const;
const PHONE_TYPES = new Set(["WORK", "MOBILE", "FAX", "HOME", "PAGER", "MAILING", "OTHER"]);
const EMAIL_TYPES = new Set(["WORK", "HOME", "MAILING", "OTHER"]);
const EMAIL_SYNTAX = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LIST_PAGE_SIZE = 50;

function statusSemantic(statusId: string | null): string {
  if (statusId === "CONVERTED") return "S";
  if (statusId === "JUNK") return "F";
  return "P";
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

/** One Bitrix24 portal: leads, user fields, timeline comments. Every method mirrors the REST contract. */
export class Portal {
  leads = new Map<number, Lead>();
  userFields: UserField[] = [];
  dealUserFields: UserField[] = [];
  comments: TimelineComment[] = [];
  /** To-dos (crm.activity.todo.add), each call adds one: FACTS-portals §6 "Not idempotent". */
  todos: { id: number; ownerTypeId: number; ownerId: number; deadline: string; title: string; responsibleId: string | null }[] = [];
  private nextLeadId = 1;
  private nextMultiId = 1;
  private nextUserFieldId = 100;
  private nextCommentId = 1;
  /**
   * FACTS.md §7: whether the duplicate index is updated synchronously on crm.lead.add is [UNCERTAIN], and newer
   * versions defer it ("Don't rely on findbycomm to dedupe two requests arriving milliseconds apart"). A phone
   * or email written now is found by findbycomm only this many milliseconds later; lists and gets see it at once.
   */
  findbycommLagMs = 0;
  /**
   * Fields an admin made required (FACTS-portals §5). REST skips the check unless an admin turned on
   * "required fields for applications" (`rest_enable_req_uf_check`, off by default); then crm.lead.add fails
   * with an empty error code and one "is missing" line per field, joined with <br>.
   */
  requiredFields: string[] = [];
  restRequiredCheck = false;

  constructor(private readonly now: () => Date = () => new Date()) {}

  reset(): void {
    this.leads.clear();
    this.comments = [];
    this.todos = [];
    this.nextLeadId = 1;
    this.nextMultiId = 1;
    this.nextCommentId = 1;
  }

  private writableField(name: string): boolean {
    return STANDARD_FIELDS.includes(name) || this.userFields.some((uf) => uf.FIELD_NAME === name);
  }

  private applyMulti(lead: Lead, type: (typeof MULTI_FIELDS)[number], value: unknown): void {
    for (const raw of asList(value)) {
      if (!raw || typeof raw !== "object") continue;
      const item = raw as Params;
      const id = item.ID === undefined ? null : Number(item.ID);
      const text = scalarString(item.VALUE)?.trim() ?? "";
      const valueType = String(item.VALUE_TYPE ?? "WORK").toUpperCase();
      if (type === "EMAIL" && text !== "" && !EMAIL_SYNTAX.test(text)) {
        throw new RestError(400, "", `Invalid e-mail address: ${text}`);
      }
      const types = type === "PHONE" ? PHONE_TYPES : EMAIL_TYPES;
      if (id !== null) {
        // With ID: change that entry, or delete it when the value is empty.
        const existing = lead[type].find((m) => m.ID === id);
        if (!existing) continue;
        if (text === "") lead[type] = lead[type].filter((m) => m.ID !== id);
        else Object.assign(existing, { VALUE: text, VALUE_TYPE: types.has(valueType) ? valueType : existing.VALUE_TYPE, indexedAt: this.indexedAt() });
      } else if (text !== "") {
        // Without ID: always a new entry, even if the same value is already there.
        lead[type].push({ ID: this.nextMultiId++, VALUE: text.slice(0, 250), VALUE_TYPE: types.has(valueType) ? valueType : "WORK", indexedAt: this.indexedAt() });
      }
    }
  }

  private indexedAt(): number {
    return this.now().getTime() + this.findbycommLagMs;
  }

  private applyFields(lead: Lead, fields: Params): void {
    for (const [name, value] of Object.entries(fields)) {
      if (name === "PHONE" || name === "EMAIL") this.applyMulti(lead, name, value);
      // Unknown and read-only fields are dropped silently, as Bitrix24 does.
      else if (this.writableField(name)) lead.fields[name] = scalarString(value);
    }
  }

  private checkRequired(lead: Lead): void {
    if (!this.restRequiredCheck) return;
    const missing = this.requiredFields.filter((name) => (name === "PHONE" || name === "EMAIL" ? lead[name].length === 0 : !lead.fields[name]));
    if (missing.length) throw new RestError(400, "", missing.map((name) => `The required field '${this.fieldTitle(name)}' is missing.`).join("<br />"));
  }

  private fieldTitle(name: string): string {
    return this.userFields.find((uf) => uf.FIELD_NAME === name)?.LABEL ?? name.charAt(0) + name.slice(1).toLowerCase().replace(/_/g, " ");
  }

  /** A lead as REST adds it (`viaRest`, with the required-field check when on) or as a person types it in. */
  addLead(fields: Params, createdAt: Date = this.now(), viaRest = false): number {
    const lead: Lead = { ID: this.nextLeadId, fields: { STATUS_ID: "NEW", OPENED: "Y" }, PHONE: [], EMAIL: [], DATE_CREATE: createdAt, DATE_MODIFY: createdAt };
    this.applyFields(lead, fields);
    if (viaRest) this.checkRequired(lead);
    if (!lead.fields.TITLE) lead.fields.TITLE = `Lead #${lead.ID}`;
    this.nextLeadId += 1;
    this.leads.set(lead.ID, lead);
    return lead.ID;
  }

  /** Everything `crm.lead.get` shows: strings, nulls, UF fields as "" when empty. */
  view(lead: Lead): Record<string, unknown> {
    const out: Record<string, unknown> = { ID: String(lead.ID) };
    for (const name of STANDARD_FIELDS) out[name] = lead.fields[name] ?? null;
    out.STATUS_SEMANTIC_ID = statusSemantic(lead.fields.STATUS_ID ?? null);
    out.DATE_CREATE = bitrixDate(lead.DATE_CREATE);
    out.DATE_MODIFY = bitrixDate(lead.DATE_MODIFY);
    out.HAS_PHONE = lead.PHONE.length ? "Y" : "N";
    out.HAS_EMAIL = lead.EMAIL.length ? "Y" : "N";
    for (const uf of this.userFields) out[uf.FIELD_NAME] = lead.fields[uf.FIELD_NAME] ?? "";
    for (const type of MULTI_FIELDS) {
      if (lead[type].length) out[type] = lead[type].map((m) => ({ ID: String(m.ID), VALUE_TYPE: m.VALUE_TYPE, VALUE: m.VALUE, TYPE_ID: type }));
    }
    return out;
  }

  private leadById(rawId: unknown): Lead {
    const id = Number(rawId);
    if (!Number.isInteger(id) || id <= 0) throw new RestError(400, "", "ID is not defined or invalid.");
    const lead = this.leads.get(id);
    if (!lead) throw new RestError(400, "", "Not found");
    return lead;
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
      const compare = (a: string, b: string) => (field.startsWith("DATE_") ? Date.parse(a) - Date.parse(b) : Number(a) - Number(b));
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

  private userFieldView(uf: UserField): Record<string, unknown> {
    return {
      ID: String(uf.ID), ENTITY_ID: "CRM_LEAD", FIELD_NAME: uf.FIELD_NAME, USER_TYPE_ID: uf.USER_TYPE_ID, XML_ID: uf.XML_ID,
      SORT: uf.SORT, MULTIPLE: uf.MULTIPLE, MANDATORY: uf.MANDATORY, SHOW_FILTER: "N", SHOW_IN_LIST: "Y", EDIT_IN_LIST: "Y",
      IS_SEARCHABLE: "N", SETTINGS: {}, EDIT_FORM_LABEL: uf.LABEL, LIST_COLUMN_LABEL: uf.LABEL, LIST_FILTER_LABEL: uf.LABEL,
      ERROR_MESSAGE: null, HELP_MESSAGE: null,
    };
  }

  /** Runs one REST method; returns `{result, total?, next?}` or throws RestError. */
  call(method: string, params: Params): { result: unknown; total?: number; next?: number } {
    switch (method) {
      case "crm.lead.add": {
        const fields = asRecord(params.fields ?? {}, "fields");
        return { result: this.addLead(fields, this.now(), true) };
      }
      case "crm.lead.update": {
        const lead = this.leadById(params.id ?? params.ID);
        const fields = asRecord(params.fields ?? {}, "fields");
        this.applyFields(lead, fields);
        lead.DATE_MODIFY = this.now();
        return { result: true };
      }
      case "crm.lead.fields": {
        const describe = (name: string, type: string, extra: Params = {}) => [name, { type, isRequired: this.requiredFields.includes(name), isReadOnly: false, isImmutable: false, isMultiple: false, isDynamic: name.startsWith("UF_"), title: this.fieldTitle(name), ...extra }];
        return {
          result: Object.fromEntries([
            ["ID", { type: "integer", isRequired: false, isReadOnly: true, isImmutable: false, isMultiple: false, isDynamic: false, title: "ID" }],
            ...STANDARD_FIELDS.map((name) => describe(name, "string")),
            ...MULTI_FIELDS.map((name) => describe(name, "crm_multifield", { isMultiple: true })),
            ...this.userFields.map((uf) => describe(uf.FIELD_NAME, uf.USER_TYPE_ID)),
          ]),
        };
      }
      case "crm.lead.delete": {
        const lead = this.leadById(params.id ?? params.ID);
        this.leads.delete(lead.ID);
        return { result: true };
      }
      case "crm.lead.get":
        return { result: this.view(this.leadById(params.id ?? params.ID)) };
      case "crm.lead.list": {
        const filter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
        const order = params.order === undefined ? {} : asRecord(params.order, "order");
        const select = asList(params.select).map(String);
        const start = Number(params.start ?? 0);
        let rows = [...this.leads.values()].map((lead) => this.view(lead)).filter((view) => this.matches(view, filter));
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
      case "crm.duplicate.findbycomm": {
        const type = String(params.type ?? params.TYPE ?? "").toUpperCase();
        if (!type) throw new RestError(400, "Communication type is not defined", "Parameter 'type' is required.");
        if (type !== "PHONE" && type !== "EMAIL") throw new RestError(400, "", `Communication type '${type}' is not supported in current context.`);
        const rawValues = params.values ?? params.VALUES;
        if (!Array.isArray(rawValues) && !(rawValues && typeof rawValues === "object")) {
          throw new RestError(400, "", "Communication values is not defined.");
        }
        const entityType = String(params.entity_type ?? params.ENTITY_TYPE ?? params.EntityType ?? "LEAD").toUpperCase();
        if (entityType !== "LEAD") return { result: [] };
        const normalize = type === "PHONE" ? bitrixNormalizePhone : (v: string) => v.trim().toLowerCase();
        const wanted = new Set(asList(rawValues).slice(0, 20).map((v) => normalize(String(v))).filter(Boolean));
        const now = this.now().getTime();
        const ids = [...this.leads.values()]
          .filter((lead) => lead[type].some((m) => m.indexedAt <= now && wanted.has(normalize(m.VALUE))))
          .map((lead) => lead.ID)
          .slice(0, 20);
        return { result: ids.length ? { LEAD: ids } : [] };
      }
      case "crm.lead.userfield.list":
      case "crm.deal.userfield.list": {
        // FACTS.md §2.6: deals have user fields of their own, with the same methods and rules.
        const list = method.startsWith("crm.deal.") ? this.dealUserFields : this.userFields;
        const filter = params.filter === undefined ? {} : asRecord(params.filter, "filter");
        const rows = list.filter((uf) =>
          Object.entries(filter).every(([k, v]) => k === "LANG" || String((uf as unknown as Params)[k]) === String(v)),
        );
        return { result: rows.map((uf) => ({ ...this.userFieldView(uf), ENTITY_ID: list === this.dealUserFields ? "CRM_DEAL" : "CRM_LEAD" })), total: rows.length };
      }
      case "crm.lead.userfield.add":
      case "crm.deal.userfield.add": {
        const list = method.startsWith("crm.deal.") ? this.dealUserFields : this.userFields;
        const fields = asRecord(params.fields ?? params, "fields");
        if (!fields.USER_TYPE_ID) throw new RestError(400, "", "The 'USER_TYPE_ID' field is not found.");
        if (!fields.FIELD_NAME) throw new RestError(400, "", "The 'FIELD_NAME' field is not found.");
        let name = String(fields.FIELD_NAME).toUpperCase();
        if (!name.startsWith("UF_CRM_")) name = `UF_CRM_${name.replace(/^UF_/, "")}`;
        if (!/^[A-Z0-9_]+$/.test(name) || name.length > 50) throw new RestError(400, "ERROR_CORE", "Invalid field name.");
        if (list.some((uf) => uf.FIELD_NAME === name)) {
          throw new RestError(400, "ERROR_CORE", `A field with the code "${name}" already exists.`);
        }
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
      case "crm.activity.todo.add": {
        // FACTS-portals §6: camelCase params; ownerTypeId 1 lead … 4 company; deadline required.
        const ownerTypeId = Number(params.ownerTypeId);
        const ownerId = Number(params.ownerId);
        if (!params.ownerTypeId || !params.ownerId || !params.deadline) throw new RestError(400, "100", "Required fields are not specified");
        if (Number.isNaN(Date.parse(String(params.deadline)))) throw new RestError(400, "WRONG_DATETIME_FORMAT", "Wrong datetime format");
        if (ownerTypeId !== 1 || !this.leads.has(ownerId)) throw new RestError(400, "OWNER_NOT_FOUND", "Owner not found");
        const todo = { id: this.todos.length + 1, ownerTypeId, ownerId, deadline: String(params.deadline), title: String(params.title ?? ""), responsibleId: params.responsibleId === undefined ? null : String(params.responsibleId) };
        this.todos.push(todo);
        return { result: { id: todo.id } };
      }
      case "crm.timeline.comment.add": {
        if (params.FIELDS !== undefined && params.fields === undefined) {
          throw new RestError(400, "", "Required fields are not specified: fields");
        }
        const fields = asRecord(params.fields ?? {}, "fields");
        const entityType = String(fields.ENTITY_TYPE ?? "").toLowerCase();
        const entityId = Number(fields.ENTITY_ID);
        const comment = scalarString(fields.COMMENT)?.trim() ?? "";
        if (!entityType || !Number.isInteger(entityId)) throw new RestError(400, "100", "Required fields are not specified: ENTITY_ID, ENTITY_TYPE");
        if (comment === "") throw new RestError(400, "INVALID_ARG_VALUE", "Comment is empty");
        if (entityType !== "lead" || !this.leads.has(entityId)) throw new RestError(400, "NOT_FOUND", "Not found.");
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
      case "user.get": {
        // FACTS-portals: user.get takes `FILTER` (upper case; EMAIL, ACTIVE …) and `ID`.
        const filter = (params.FILTER ?? {}) as Params;
        const wanted = params.ID ?? filter.ID;
        const email = filter.EMAIL === undefined ? undefined : String(filter.EMAIL).toLowerCase();
        const rows = SANDBOX_USERS.filter((u) => (wanted === undefined || String(u.ID) === String(wanted)) && (email === undefined || u.EMAIL.toLowerCase() === email));
        return { result: rows.map((u) => ({ ID: String(u.ID), NAME: u.NAME, LAST_NAME: u.LAST_NAME, EMAIL: u.EMAIL, ACTIVE: true })), total: rows.length };
      }
      default:
        throw new RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
    }
  }

  /** Leads with their timeline comments, for tests and the sandbox page. */
  snapshot(): Record<string, unknown>[] {
    return [...this.leads.values()].map((lead) => ({
      ...this.view(lead),
      TIMELINE_COMMENTS: this.comments.filter((c) => c.ENTITY_ID === lead.ID).map((c) => c.COMMENT),
      TODOS: this.todos.filter((t) => t.ownerTypeId === 1 && t.ownerId === lead.ID).map(({ title, deadline, responsibleId }) => ({ title, deadline, responsibleId })),
    }));
  }
}

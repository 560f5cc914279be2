/**
 * CoMagic's `upload.offline_messages` (Data API v2.0) as ../shared/reference/loop-docs/
 * data_api__communication__upload_offline_messages.txt ("l.N" below) and FACTS-loop.md §2 and §6 describe it: refused
 * with -32008 until the account's «Загрузка офлайн-заявок из внешней системы» component is on (l.10); at most 50
 * messages (l.11); each needs a session, campaign or site and a phone or email (l.13-15); a time not in the future,
 * after the session's start, whose session is at most 180 days older (l.24-25, l.31). Accepted messages become rows of
 * get.offline_messages_report with form_type "DataAPI" (FACTS-loop §2), through data-api.ts's `record`.
 *
 * Two things the docs leave open are switches (FACTS-loop §6 "upload.offline_messages" 2, §8.1):
 * - `duplicates`: a second message with an ext_id already stored is stored again ("accept") or not ("ignore": the
 *   answer then carries the id stored first, as upload.sessions answers an ext_id it dropped as a duplicate with its
 *   session id, comagic/docs/data_api__session__upload_sessions.txt:24,148-153).
 * - `batchFailure`: one invalid message fails the whole request and stores nothing ("whole", the default, as
 *   upload.deals_history documents for itself), or is left out silently ("drop_invalid"): the others are stored and
 *   the answer lists only their ids, in order, with nothing saying which message is missing. The answer has no field
 *   to say more (l.79-93), so a per-message error cannot be modelled honestly. Refusals of the request itself (too
 *   many messages, a missing list, an unknown parameter) fail it either way.
 * Error mnemonics for `upload.*` are undocumented (l.99 points to a section that does not exist): the sandbox uses
 * the -32602 mnemonics common to all methods and to create (data_api.txt:217-270) and, as deals.ts, names no message's index in `field`.
 * Points are charged by data-api.ts's dispatch, one per successful request.
 */
import { Hono } from "hono";
import { formatComagicDateTime, parseComagicDateTime } from "../../worker/domain/comagic-time";
import { RpcError } from "./rpc-error";

type Params = Record<string, unknown>;

/** What a message takes from its visitor session (a seeded get.visitor_sessions_report row). */
interface SessionRow {
  date_time: string;
  site_id: number | null;
  campaign_id: number | null;
  visitor_id: number | null;
  person_id: number | null;
}

const numberOrNull = (value: unknown) => (typeof value === "number" ? value : null);

function sessionRow(row: Params | undefined): SessionRow | null {
  if (typeof row?.date_time !== "string") return null;
  const n = numberOrNull;
  return { date_time: row.date_time, site_id: n(row.site_id), campaign_id: n(row.campaign_id), visitor_id: n(row.visitor_id), person_id: n(row.person_id) };
}

export interface StoredOfflineMessage {
  id: number;
  communication_id: number;
  date_time: string;
  ext_id: string | null;
  name: string | null;
  phone: string | null;
  email: string | null;
  message: string | null;
  form_name: string | null;
  visitor_session_id: number | null;
  site_id: number | null;
  campaign_id: number | null;
  uploaded_at: number;
}

export interface OfflineUploadsSettings {
  /** l.10: the component «Загрузка офлайн-заявок из внешней системы». Off: -32008 method_component_disabled. */
  enabled: boolean;
  /** FACTS-loop §6 2: what a second message with a stored ext_id does (undocumented). */
  duplicates: "accept" | "ignore";
  /** FACTS-loop §2, §8.1: whether one invalid message fails the request (undocumented). */
  batchFailure: "whole" | "drop_invalid";
  /** The account's sites (l.34); null: any site id is taken, the sandbox keeping no list of its own. */
  siteIds: number[] | null;
}

const DEFAULTS: OfflineUploadsSettings = { enabled: false, duplicates: "accept", batchFailure: "whole", siteIds: null };

/** l.11 "Максимальное количество заявок в одном запросе 50 шт", l.23 "Максимально 50". */
const MAX_MESSAGES = 50;
/** l.31 "сессия должна быть создана не раньше 180 дней до date_time". */
const SESSION_MAX_AGE_MS = 180 * 86_400_000;
const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
/**
 * l.28 "в формате E164": CoMagic's own E.164 examples are digits without "+" (call_api__create_call__
 * start_employee_call.txt:80 "79091234567"); the same 10-15 digits the Call API sandbox takes (call-api.ts).
 */
const E164_DIGITS = /^\d{10,15}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
/** l.51-71: the fields a message may carry. */
const MESSAGE_FIELDS = ["date_time", "name", "phone", "email", "message", "visitor_session_id", "campaign_id", "source_id", "site_id", "form_name", "ext_id", "user_fields"];
/** Made-up id ranges, far from what tests seed into get.offline_messages_report. */
const FIRST_ID = 700_000_001;
const FIRST_COMMUNICATION_ID = 800_000_001;

const missed = (field: string) => new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field });
const wrongType = (field: string) => new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field });
const invalid = (field: string) => new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field });
const badTime = (field: string) => new RpcError(-32602, "invalid_date_time", "Invalid date time", { field });
const notFound = (field: string) => new RpcError(-32602, "entity_not_found", "Entity not found", { field });
const combination = (field: string) => new RpcError(-32602, "invalid_parameters_combination", "The combination of parameters is not permitted", { field });

/** Account wall-clock times compare as text; as instants only against "now". */
const wallMs = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);
/** A real calendar time: "2026-02-30 10:00:00" matches the pattern but is no day. */
const realDateTime = (text: string) => DATE_TIME.test(text) && new Date(wallMs(text)).toISOString().slice(0, 19).replace("T", " ") === text;

function optionalString(r: Params, name: string): string | null {
  const value = r[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw wrongType(`offline_messages.${name}`);
  return value;
}

function optionalId(r: Params, name: string): number | null {
  const value = r[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value)) throw wrongType(`offline_messages.${name}`);
  return value;
}

export interface OfflineUploadsSandboxOptions {
  now: () => number;
  /** The account's time zone: date_time is its wall clock (l.24, FACTS.md §1.1). */
  timeZone: string;
  /** The seeded get.visitor_sessions_report row with this id, if any. */
  session: (id: number) => Params | undefined;
  /** Adds an accepted message to get.offline_messages_report. */
  record: (row: Record<string, unknown>) => void;
}

export function createOfflineUploadsSandbox(options: OfflineUploadsSandboxOptions) {
  let settings: OfflineUploadsSettings = { ...DEFAULTS };
  const messages: StoredOfflineMessage[] = [];
  /** Messages left out under "drop_invalid", with why: the sandbox's view, never told to the client. */
  const dropped: { ext_id: string | null; mnemonic: string; field: unknown }[] = [];
  const stats = { uploads: 0, stored: 0, ignoredDuplicates: 0, rejectedUploads: 0, lastRejection: null as null | { mnemonic: string; field: unknown } };
  let count = 0;

  function refuseUntilEnabled(): void {
    if (settings.enabled) return;
    // data_api.txt:226, the generic component refusal; l.10 names the component.
    throw new RpcError(-32008, "method_component_disabled", "You need at least on of the following components to access this method: Загрузка офлайн-заявок из внешней системы", {
      params: { components: ["Загрузка офлайн-заявок из внешней системы"] },
    });
  }

  type Checked = Omit<StoredOfflineMessage, "id" | "communication_id" | "uploaded_at"> & { session: SessionRow | null };

  /** One message's own rules (l.13-37). */
  function checkMessage(value: unknown): Checked {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw wrongType("offline_messages");
    const r = value as Params;
    const unexpected = Object.keys(r).find((k) => !MESSAGE_FIELDS.includes(k));
    if (unexpected !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: `offline_messages.${unexpected}` });
    const name = optionalString(r, "name");
    const phone = optionalString(r, "phone");
    const email = optionalString(r, "email");
    const message = optionalString(r, "message");
    const formName = optionalString(r, "form_name");
    const extId = optionalString(r, "ext_id");
    const sessionId = optionalId(r, "visitor_session_id");
    const campaignId = optionalId(r, "campaign_id");
    const siteId = optionalId(r, "site_id");
    const sourceId = optionalId(r, "source_id");

    // l.15, l.28-29: a phone or an email; l.28 the phone in E.164.
    if (phone === null && email === null) throw missed("offline_messages.phone");
    if (phone !== null && !E164_DIGITS.test(phone)) throw invalid("offline_messages.phone");
    if (email !== null && !EMAIL.test(email)) throw invalid("offline_messages.email");

    // l.14, l.31-34: a session, a campaign or a site; campaign -1 needs a site (l.32).
    if (sessionId === null && campaignId === null && siteId === null) throw missed("offline_messages.visitor_session_id");
    if (campaignId === -1 && siteId === null) throw missed("offline_messages.site_id");
    if (siteId !== null && settings.siteIds !== null && !settings.siteIds.includes(siteId)) throw notFound("offline_messages.site_id");
    // l.33 "только неудаленный источник": the sandbox keeps no sources, so none is one.
    if (sourceId !== null) throw notFound("offline_messages.source_id");
    // l.37: user fields must be made first (create.offline_message_user_field); the sandbox has none.
    if (r.user_fields !== undefined && !Array.isArray(r.user_fields)) throw wrongType("offline_messages.user_fields");
    if (Array.isArray(r.user_fields) && r.user_fields.length > 0) throw notFound("offline_messages.user_fields.ext_id");

    // l.24-26: "YYYY-MM-DD hh:mm:ss", not in the future; absent, the time of the call (the table's "да" says
    // required: the sentence that says what happens is followed).
    let dateTime: string;
    if (r.date_time === undefined || r.date_time === null) {
      dateTime = formatComagicDateTime(new Date(options.now()), options.timeZone);
    } else {
      if (typeof r.date_time !== "string") throw wrongType("offline_messages.date_time");
      if (!realDateTime(r.date_time)) throw badTime("offline_messages.date_time");
      dateTime = r.date_time;
      const at = parseComagicDateTime(dateTime, options.timeZone)?.getTime() ?? Number.NaN;
      if (!(at <= options.now())) throw badTime("offline_messages.date_time");
    }

    let session: SessionRow | null = null;
    if (sessionId !== null) {
      // data_api.txt:265 "Если передан уникальный идентификатор сущности, которая не найдена".
      session = sessionRow(options.session(sessionId));
      if (session === null) throw notFound("offline_messages.visitor_session_id");
      // l.25 "Должна быть больше чем у переданной сессии посетителя": strictly later.
      if (!(dateTime > session.date_time)) throw badTime("offline_messages.date_time");
      // l.31: the session at most 180 days before date_time.
      if (wallMs(dateTime) - wallMs(session.date_time) > SESSION_MAX_AGE_MS) throw invalid("offline_messages.visitor_session_id");
      // l.14 "если указанны несколько параметров, то данные должны быть консистентные".
      if (siteId !== null && session.site_id !== null && siteId !== session.site_id) throw combination("offline_messages.site_id");
      if (campaignId !== null && campaignId !== -1 && session.campaign_id !== null && campaignId !== session.campaign_id) throw combination("offline_messages.campaign_id");
    }
    return {
      date_time: dateTime,
      ext_id: extId,
      name,
      phone,
      email,
      message,
      form_name: formName,
      visitor_session_id: sessionId,
      site_id: siteId ?? session?.site_id ?? null,
      campaign_id: campaignId === -1 ? null : (campaignId ?? session?.campaign_id ?? null),
      session,
    };
  }

  function store(c: Checked, t: number): number {
    // FACTS-loop §6 2: the duplicate rule is a switch; messages without ext_id are never duplicates.
    const earlier = c.ext_id === null ? undefined : messages.find((m) => m.ext_id === c.ext_id);
    if (earlier && settings.duplicates === "ignore") {
      stats.ignoredDuplicates += 1;
      return earlier.id;
    }
    const { session, ...fields } = c;
    const stored: StoredOfflineMessage = { ...fields, id: FIRST_ID + count, communication_id: FIRST_COMMUNICATION_ID + count, uploaded_at: t };
    count += 1;
    messages.push(stored);
    stats.stored += 1;
    // The report's row (get_offline_messages_report.txt's fields): FACTS-loop §2 form_type "DataAPI"; a new request is
    // not processed yet (`status`, l.44-48 of that page): "not_processed" is the sandbox's guess.
    options.record({
      id: stored.id,
      communication_id: stored.communication_id,
      communication_type: "offline_message",
      date_time: stored.date_time,
      text: stored.message,
      form_type: "DataAPI",
      form_name: stored.form_name,
      status: "not_processed",
      site_id: stored.site_id,
      campaign_id: stored.campaign_id,
      visitor_session_id: stored.visitor_session_id,
      visitor_id: session?.visitor_id ?? null,
      person_id: session?.person_id ?? null,
      visitor_phone_number: stored.phone,
      visitor_email: stored.email,
      visitor_name: stored.name,
      ext_id: stored.ext_id,
    });
    return stored.id;
  }

  /** upload.offline_messages (l.7-99). */
  function upload(params: Params) {
    const unexpected = Object.keys(params).find((name) => !["access_token", "user_id", "offline_messages"].includes(name));
    if (unexpected !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: unexpected });
    const list = params.offline_messages;
    if (list === undefined) throw missed("offline_messages");
    if (!Array.isArray(list)) throw wrongType("offline_messages");
    if (list.length === 0) throw invalid("offline_messages");
    if (list.length > MAX_MESSAGES) throw new RpcError(-32602, "data_limit_exceeded", "A new data limit has been exceeded", { field: "offline_messages" });
    const checked: Checked[] = [];
    for (const value of list) {
      try {
        checked.push(checkMessage(value));
      } catch (error) {
        if (settings.batchFailure === "whole" || !(error instanceof RpcError)) throw error;
        const extId = (value as Params | null)?.ext_id;
        dropped.push({ ext_id: typeof extId === "string" ? extId : null, mnemonic: error.mnemonic, field: error.extra.field });
      }
    }
    const t = options.now();
    const data = checked.map((c) => ({ id: store(c, t) }));
    stats.uploads += 1;
    // l.79-93: one {id} per stored message, nothing else.
    return { data, metadata: {} };
  }

  const control = new Hono();
  /** What arrived: the stored messages, those "drop_invalid" left out (with why), counts and settings. */
  control.get("/_sandbox/comagic/offline-uploads", (c) => c.json({ messages, dropped, stats, settings }));
  /** {"enabled": true} — the component is on (l.10); also duplicates, batchFailure, siteIds. */
  control.post("/_sandbox/comagic/offline-uploads/settings", async (c) => {
    settings = { ...settings, ...((await c.req.json()) as Partial<OfflineUploadsSettings>) };
    return c.json({ ok: true, settings });
  });

  return {
    handles: (method: string) => method === "upload.offline_messages",
    /** Runs upload.offline_messages; RpcError for a refusal. Points are the caller's (data-api.ts). */
    call(method: string, params: Params) {
      refuseUntilEnabled();
      if (method !== "upload.offline_messages") throw new RpcError(-32601, "method_not_found", "The method does not exist");
      try {
        return upload(params);
      } catch (error) {
        if (error instanceof RpcError) {
          stats.rejectedUploads += 1;
          stats.lastRejection = { mnemonic: error.mnemonic, field: error.extra.field };
        }
        throw error;
      }
    },
    control,
    setSettings(input: Partial<OfflineUploadsSettings>) {
      settings = { ...settings, ...input };
    },
    reset() {
      settings = { ...DEFAULTS };
      messages.length = 0;
      dropped.length = 0;
      count = 0;
      Object.assign(stats, { uploads: 0, stored: 0, ignoredDuplicates: 0, rejectedUploads: 0, lastRejection: null });
    },
  };
}

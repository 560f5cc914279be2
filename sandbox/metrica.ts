/**
 * A stand-in for Yandex Metrica's offline-conversions API (issue #25 §3), with the unkind parts of
 * `../shared/reference/FACTS-loop.md` §6 "Yandex Metrica" (cited "§6.M<n>"; §3.x for the API's own facts):
 *
 * - `POST /management/v1/counter/{counterId}/offline_conversions/upload` with `Authorization: OAuth <token>` (§3.1) and
 *   a multipart part `file`: a UTF-8 CSV, first line the column names, an identifier column (ClientId, UserId, Yclid,
 *   PurchaseId), Target, DateTime (Unix seconds), optional Price and Currency (§3.2). The 200 only means "file
 *   received" (§6.M1): `{"uploading":{…, "status":"UPLOADED"}}`, nothing linked yet.
 * - `GET …/offline_conversions/uploading/{id}` and `GET …/uploadings` (§3.3): each read of an upload's status moves it
 *   one step, UPLOADED → EXPORTED → MATCHED → PROCESSED or LINKAGE_FAILURE (§6.M1: asynchronous); linking happens at
 *   that last step, against the visits seeded then.
 * - A row links only when its visitor is known, its Target is one of the counter's goal identifiers and the visitor's
 *   last visit is at most 21 days before processing; else it is silently not linked (§3.4, §6.M2), counted in
 *   `goal_not_found_quantity` / `user_not_found_quantity` (unknown goal / unknown visitor) or nowhere (too old).
 * - Invalid rows are dropped while the file is accepted: `line_quantity < source_quantity` (§3.3, §6.M3); a missing
 *   `file`, an unreadable CSV or a header without an identifier/Target/DateTime is `400 invalid_uploading`; a DateTime
 *   in the future fails the file (§3.2 "возникнет ошибка", §6.M3).
 * - A re-sent (identifier, Target, DateTime) overwrites the linked conversion's price, never adds one (§3.5, §6.M4).
 * - Errors in the `{"errors":[{error_type,message}],"code","message"}` shape (§3.6): no or malformed Authorization ⇒
 *   401 `unauthorized`; an unknown token ⇒ 403 `invalid_token` (the error table's status; the authorization page says
 *   401: §3.1 [CONFLICT], a client must take both); a counter the token cannot reach ⇒ 403 `access_denied`; over the
 *   daily quota ⇒ 429 `quota_requests_by_uid`; `/_sandbox/metrica/fail` injects 503 `backend_error` or a 429 (§6.M5).
 *
 * Control API (`/_sandbox/metrica/…`): `GET` the state (counters, uploads with their rows, linked conversions);
 * `POST counters` adds a counter; `POST visits` seeds visitors; `POST fail` makes the next calls fail; `POST process`
 * finishes every pending upload now; `DELETE` forgets uploads, conversions, visits and failures.
 */
import { Hono, type Context } from "hono";

/** The example counter of the docs (§3.1 `counterId` example), its token and its JavaScript-event goal identifiers. */
export const SANDBOX_METRICA = { counterId: "2215573", token: "sandbox-metrica-token", goals: ["crm_qualified", "crm_won"] } as const;

const DAY_MS = 86_400_000;
// §3.4: the conversion window, from the visitor's last visit to the processing of the file.
const LINK_WINDOW_MS = 21 * DAY_MS;
// §3.6: 5000 requests a day per user; settable so that a test can reach it.
const DAILY_REQUESTS = 5000;
const STEPS = ["UPLOADED", "EXPORTED", "MATCHED"] as const;
const ID_COLUMNS = { CLIENT_ID: "ClientId", USER_ID: "UserId", YCLID: "Yclid", PURCHASE_ID: "PurchaseId" } as const;
type IdType = keyof typeof ID_COLUMNS;

interface Row {
  idType: IdType;
  id: string;
  target: string;
  dateTime: number;
  price: number | null;
  currency: string | null;
}

interface Uploading {
  id: number;
  counterId: string;
  create_time: string;
  source_quantity: number;
  line_quantity: number;
  comment: string | null;
  type: string;
  client_id_type: IdType;
  status: string;
  goal_not_found_quantity: number;
  user_not_found_quantity: number;
  linked_quantity: number;
  rows: Row[];
  /** Reads of the status so far: each moves the upload one step (§6.M1). */
  step: number;
}

interface Counter {
  token: string;
  goals: Set<string>;
  /** Visitor key (`CLIENT_ID:123`, `YCLID:456`) → last visit (ms). */
  visits: Map<string, number>;
  /** `idType:id|Target|DateTime` → the linked conversion (§6.M4: one per key). */
  linked: Map<string, { idType: IdType; id: string; target: string; dateTime: number; price: number | null; currency: string | null; uploadId: number }>;
}

export interface MetricaSandboxOptions {
  now?: () => number;
}

function metricaError(c: Context, status: 400 | 401 | 403 | 404 | 429 | 503, errorType: string, message: string) {
  return c.json({ errors: [{ error_type: errorType, message }], code: status, message }, status);
}

/** The CSV's rows (§3.2): comma separated, no quoting needed for the columns Metrica takes. */
function parseCsv(text: string): string[][] {
  return text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .map((line) => line.split(",").map((cell) => cell.trim()));
}

export function createMetricaSandbox(options: MetricaSandboxOptions = {}) {
  const now = options.now ?? Date.now;
  const counters = new Map<string, Counter>();
  const uploads: Uploading[] = [];
  let nextId = 1;
  let failures: { status: 429 | 503 | 504; errorType: string; times: number } | null = null;
  let dailyRequests = DAILY_REQUESTS;
  const used = new Map<string, number>();
  const addCounter = (counterId: string, token: string, goals: readonly string[]) => counters.set(counterId, { token, goals: new Set(goals), visits: new Map(), linked: new Map() });
  addCounter(SANDBOX_METRICA.counterId, SANDBOX_METRICA.token, SANDBOX_METRICA.goals);

  /** Links an upload's rows against the visits known now (§3.4, §6.M2) and overwrites by key (§6.M4). */
  const process = (upload: Uploading) => {
    const counter = counters.get(upload.counterId);
    if (!counter) return;
    let goalMissing = 0;
    let userMissing = 0;
    let linked = 0;
    for (const row of upload.rows) {
      if (!counter.goals.has(row.target)) {
        goalMissing += 1;
        continue;
      }
      const lastVisit = counter.visits.get(`${row.idType}:${row.id}`);
      if (lastVisit === undefined) {
        userMissing += 1;
        continue;
      }
      // §3.4: more than 21 days from the last visit to the processing of the file ⇒ silently not linked.
      if (now() - lastVisit > LINK_WINDOW_MS) continue;
      linked += 1;
      counter.linked.set(`${row.idType}:${row.id}|${row.target}|${row.dateTime}`, { ...row, uploadId: upload.id });
    }
    upload.goal_not_found_quantity = goalMissing;
    upload.user_not_found_quantity = userMissing;
    upload.linked_quantity = linked;
    upload.status = linked > 0 ? "PROCESSED" : "LINKAGE_FAILURE";
  };
  const advance = (upload: Uploading) => {
    if (upload.step >= STEPS.length) return;
    upload.step += 1;
    if (upload.step === STEPS.length) process(upload);
    else upload.status = STEPS[upload.step] ?? upload.status;
  };
  const view = ({ rows: _rows, step: _step, counterId: _counterId, ...rest }: Uploading) => rest;

  const app = new Hono();
  const api = new Hono<{ Variables: { counter: Counter } }>();

  // Failures, auth and quotas come before anything else, as at the real front door (§3.6, §6.M5).
  api.use("/counter/:counterId/*", async (c, next) => {
    if (failures && failures.times > 0) {
      failures.times -= 1;
      const { status, errorType } = failures;
      return c.json({ errors: [{ error_type: errorType, message: "Сервис временно недоступен" }], code: status, message: "Сервис временно недоступен" }, status);
    }
    const match = /^OAuth (\S+)$/.exec(c.req.header("authorization") ?? "");
    if (!match) return metricaError(c, 401, "unauthorized", "Unauthorized: the Authorization header is not 'OAuth <token>'");
    const token = match[1] as string;
    if (![...counters.values()].some((counter) => counter.token === token)) return metricaError(c, 403, "invalid_token", "Invalid oauth_token");
    const day = `${token}:${new Date(now()).toISOString().slice(0, 10)}`;
    const count = (used.get(day) ?? 0) + 1;
    used.set(day, count);
    if (count > dailyRequests) return metricaError(c, 429, "quota_requests_by_uid", "Quota exceeded: requests per day for the user");
    const counter = counters.get(c.req.param("counterId") ?? "");
    if (!counter || counter.token !== token) return metricaError(c, 403, "access_denied", "Access is denied");
    c.set("counter", counter);
    await next();
  });

  api.post("/counter/:counterId/offline_conversions/upload", async (c) => {
    const comment = c.req.query("comment") ?? null;
    // §3.1: comment ≤ 255 characters of digits, Latin and Cyrillic letters (spaces allowed in practice: [UNCERTAIN]).
    if (comment !== null && (comment.length > 255 || !/^[\p{N}A-Za-z\u0400-\u04FF _-]*$/u.test(comment))) {
      return metricaError(c, 400, "invalid_parameter", "comment: at most 255 digits, Latin and Cyrillic letters");
    }
    const type = c.req.query("type") ?? "BASIC";
    if (!["BASIC", "CALLS", "CHATS"].includes(type)) return metricaError(c, 400, "invalid_parameter", "type: BASIC, CALLS or CHATS");
    const declared = c.req.query("client_id_type")?.toUpperCase() ?? null;
    if (declared !== null && !(declared in ID_COLUMNS)) return metricaError(c, 400, "invalid_parameter", "client_id_type: CLIENT_ID, USER_ID, YCLID or PURCHASE_ID");

    let file: unknown;
    try {
      file = (await c.req.parseBody()).file;
    } catch {
      return metricaError(c, 400, "invalid_uploading", "The body is not multipart/form-data");
    }
    if (!(file instanceof Blob)) return metricaError(c, 400, "invalid_uploading", "No multipart part named file");
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
    } catch {
      return metricaError(c, 400, "invalid_uploading", "The file is not UTF-8");
    }
    const [header, ...lines] = parseCsv(text);
    if (!header) return metricaError(c, 400, "invalid_uploading", "The file is empty");
    const column = (name: string) => header.findIndex((h) => h.toLowerCase() === name.toLowerCase());
    const idTypes = (Object.keys(ID_COLUMNS) as IdType[]).filter((t) => column(ID_COLUMNS[t]) >= 0);
    const idType = declared ? (declared as IdType) : idTypes[0];
    if (!idType || column(ID_COLUMNS[idType]) < 0) return metricaError(c, 400, "invalid_uploading", "No identifier column (ClientId, UserId, Yclid, PurchaseId) for the file's client_id_type");
    const at = { id: column(ID_COLUMNS[idType]), target: column("Target"), dateTime: column("DateTime"), price: column("Price"), currency: column("Currency") };
    if (at.target < 0 || at.dateTime < 0) return metricaError(c, 400, "invalid_uploading", "The columns Target and DateTime are required");

    const nowSeconds = Math.floor(now() / 1000);
    const rows: Row[] = [];
    for (const cells of lines) {
      const cell = (i: number) => (i >= 0 ? (cells[i] ?? "") : "");
      const dateTime = cell(at.dateTime);
      if (!/^\d{1,12}$/.test(dateTime)) continue;
      // §3.2: "Если на момент загрузки файла время из DateTime еще не наступило, возникнет ошибка."
      if (Number(dateTime) > nowSeconds) return metricaError(c, 400, "invalid_uploading", `DateTime ${dateTime} is in the future`);
      const price = cell(at.price);
      const currency = cell(at.currency);
      // §3.2: a dot is the decimal separator; ISO 4217 codes. Rows that break them are dropped (§3.3 line_quantity).
      if (price !== "" && !/^\d+(\.\d+)?$/.test(price)) continue;
      if (currency !== "" && !/^[A-Z]{3}$/.test(currency)) continue;
      const id = cell(at.id);
      const target = cell(at.target);
      if (id === "" || target === "") continue;
      rows.push({ idType, id, target, dateTime: Number(dateTime), price: price === "" ? null : Number(price), currency: currency || null });
    }
    const upload: Uploading = {
      id: nextId++,
      counterId: c.req.param("counterId"),
      create_time: new Date(now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      source_quantity: lines.length,
      line_quantity: rows.length,
      comment,
      type,
      client_id_type: idType,
      status: "UPLOADED",
      goal_not_found_quantity: 0,
      user_not_found_quantity: 0,
      linked_quantity: 0,
      rows,
      step: 0,
    };
    uploads.push(upload);
    return c.json({ uploading: view(upload) });
  });

  api.get("/counter/:counterId/offline_conversions/uploading/:id", (c) => {
    const upload = uploads.find((u) => String(u.id) === c.req.param("id") && u.counterId === c.req.param("counterId"));
    if (!upload) return metricaError(c, 404, "not_found", "Uploading not found");
    advance(upload);
    return c.json({ uploading: view(upload) });
  });

  api.get("/counter/:counterId/offline_conversions/uploadings", (c) => {
    const limit = Number(c.req.query("limit") ?? 10000);
    const offset = Number(c.req.query("offset") ?? 0);
    const mine = uploads.filter((u) => u.counterId === c.req.param("counterId"));
    return c.json({ uploadings: mine.slice(offset, offset + limit).map(view) });
  });

  app.route("/management/v1", api);

  app.get("/_sandbox/metrica", (c) =>
    c.json({
      counters: [...counters].map(([counterId, counter]) => ({
        counterId,
        goals: [...counter.goals],
        visits: Object.fromEntries(counter.visits),
        linked: [...counter.linked.values()],
      })),
      uploads: uploads.map(({ step: _step, ...rest }) => rest),
    }),
  );
  app.post("/_sandbox/metrica/counters", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { counterId?: unknown; token?: unknown; goals?: unknown };
    if (typeof body.counterId !== "string" || typeof body.token !== "string" || !Array.isArray(body.goals)) {
      return c.json({ error: "Give counterId, token (strings) and goals (identifiers)" }, 400);
    }
    addCounter(body.counterId, body.token, body.goals.map(String));
    return c.json({ ok: true });
  });
  // Seeds a visitor: `{counterId?, clientId? | yclid? | userId?, lastVisitAt (ISO) | daysAgo}`.
  app.post("/_sandbox/metrica/visits", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as Record<string, unknown>;
    const counter = counters.get(typeof body.counterId === "string" ? body.counterId : SANDBOX_METRICA.counterId);
    const key =
      typeof body.clientId === "string" ? `CLIENT_ID:${body.clientId}` : typeof body.yclid === "string" ? `YCLID:${body.yclid}` : typeof body.userId === "string" ? `USER_ID:${body.userId}` : null;
    const when = typeof body.lastVisitAt === "string" ? Date.parse(body.lastVisitAt) : typeof body.daysAgo === "number" ? now() - body.daysAgo * DAY_MS : now();
    if (!counter || !key || Number.isNaN(when)) return c.json({ error: "Give a known counterId, clientId, yclid or userId, and lastVisitAt (ISO) or daysAgo" }, 400);
    counter.visits.set(key, when);
    return c.json({ ok: true });
  });
  app.post("/_sandbox/metrica/fail", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { times?: unknown; status?: unknown; errorType?: unknown };
    const status = body.status === 429 || body.status === 504 ? body.status : 503;
    const errorType = typeof body.errorType === "string" ? body.errorType : status === 429 ? "quota_requests_by_ip" : status === 504 ? "timeout" : "backend_error";
    const times = Number.isInteger(body.times) && (body.times as number) > 0 ? Math.min(body.times as number, 100) : 1;
    failures = { status, errorType, times };
    return c.json({ failing: times, status, errorType });
  });
  app.post("/_sandbox/metrica/quota", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { perDay?: unknown };
    dailyRequests = Number.isInteger(body.perDay) ? (body.perDay as number) : DAILY_REQUESTS;
    return c.json({ perDay: dailyRequests });
  });
  app.post("/_sandbox/metrica/process", (c) => {
    for (const upload of uploads) while (upload.step < STEPS.length) advance(upload);
    return c.json({ processed: uploads.length });
  });
  app.delete("/_sandbox/metrica", (c) => {
    uploads.length = 0;
    used.clear();
    failures = null;
    dailyRequests = DAILY_REQUESTS;
    for (const counter of counters.values()) {
      counter.visits.clear();
      counter.linked.clear();
    }
    return c.body(null, 204);
  });

  return { app };
}

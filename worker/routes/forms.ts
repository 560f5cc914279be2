import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { cors } from "hono/cors";
import type { AppEnv } from "./app-env";
import { limitBody } from "./body-limit";
import type { Config } from "../config";
import { DEFAULT_PORTAL, portalKeySchema } from "../domain/portal-key";
import { requirePortalConfig } from "../portal-config";
import { formKey } from "../domain/event-keys";
import { formFingerprint, readFormSubmission, type FormFields } from "../domain/form-submission";
import { maskPhone } from "../domain/phone";
import { withoutSecretFields } from "../domain/secret-fields";
import { AppError } from "../errors";
import { leadJob } from "../jobs/schema";
import { activityOf, recordQuietly } from "../storage/portal-activity";
import type { Env } from "../env";
import type { LeadEvent } from "../domain/lead-event";
import { offlineMessageOf } from "../domain/offline-message";
import { errorMessage, type Logger } from "../log";
import { ga4For, metricaFor, storesFor } from "../wiring";

export const FORM_MAX_BYTES = 64 * 1024;
/** What the rate-limit binding's period is set to in wrangler.toml; sent as Retry-After. */
const RATE_LIMIT_PERIOD_SECONDS = 60;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function stringFields(input: unknown): FormFields {
  if (!input || typeof input !== "object" || Array.isArray(input)) {
    throw new AppError(400, "invalid_body", "The body must be an object of form fields");
  }
  const fields: FormFields = {};
  for (const [key, value] of Object.entries(input)) {
    if (typeof value === "string") fields[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") fields[key] = String(value);
    else if (Array.isArray(value)) fields[key] = value.filter((v) => typeof v === "string" || typeof v === "number").join(", ");
    // Files and nested objects are not lead data.
  }
  return fields;
}

/** Forms come as urlencoded or multipart (HTML), JSON (fetch), or JSON in text/plain (sendBeacon). */
async function readFields(c: Context<AppEnv>): Promise<FormFields> {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (type.startsWith("application/x-www-form-urlencoded") || type.startsWith("multipart/form-data")) {
    try {
      return stringFields(await c.req.parseBody({ all: true }));
    } catch {
      throw new AppError(400, "invalid_body", "The form body could not be read");
    }
  }
  const text = await c.req.text();
  try {
    return stringFields(JSON.parse(text));
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(400, "invalid_body", "The body is neither a form nor JSON (send application/x-www-form-urlencoded, multipart/form-data or JSON)");
  }
}

/** A browser navigating (a plain HTML form) gets a redirect; scripts and beacons get JSON. */
function wantsRedirect(c: Context<AppEnv>): boolean {
  return (c.req.header("accept") ?? "").includes("text/html");
}

function redirectTarget(c: Context<AppEnv>, fields: FormFields, allows: (origin: string) => boolean): string | null {
  for (const candidate of [fields._redirect, c.req.header("referer")]) {
    if (!candidate) continue;
    try {
      const url = new URL(candidate);
      // Only back to a site we serve: anything else would make the worker an open redirect.
      if (allows(url.origin)) return url.toString();
    } catch {
      // not a URL: try the next candidate
    }
  }
  return null;
}

const THANK_YOU_PAGE = `<!doctype html><meta charset="utf-8"><title>Thank you</title><p>Thank you, we have your request and will be in touch soon.</p>`;

export const formsRoute = new Hono<AppEnv>();

/** `/forms` is the default portal's, `/forms/<portal key>` that portal's: each allows only its own sites. */
async function portalConfig(c: Context<AppEnv>): Promise<Config> {
  const portal = portalKeySchema.safeParse(c.req.param("portal") ?? DEFAULT_PORTAL);
  if (!portal.success) throw new AppError(404, "unknown_portal", "No such portal");
  return requirePortalConfig(c.env, portal.data);
}

formsRoute.use("/:portal?", async (c, next) => {
  const config = await portalConfig(c);
  return cors({
    origin: (origin) => (config.ALLOWED_ORIGINS.allows(origin) ? origin : null),
    allowMethods: ["POST", "OPTIONS"],
    allowHeaders: ["Content-Type"],
    maxAge: 86_400,
  })(c, next);
});

formsRoute.post("/:portal?", limitBody(FORM_MAX_BYTES), async (c) => {
  const config = await portalConfig(c);
  const log = c.get("log").child({ portal: config.portal });
  const origin = c.req.header("origin");
  // Fail closed: with no site configured, nothing may post forms, browser or not.
  if ((origin !== undefined && !config.ALLOWED_ORIGINS.allows(origin)) || (origin === undefined && config.ALLOWED_ORIGINS.isEmpty)) {
    log.warn("form.rejected", { reason: "origin", origin: origin?.slice(0, 100) ?? null });
    throw new AppError(403, "origin_not_allowed", "This site may not send forms here; add its origin to ALLOWED_ORIGINS");
  }
  // Without its per-IP limit, /forms would let anyone fill the CRM: refuse, as without a secret.
  if (!c.env.FORM_RATE_LIMITER) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  const ip = c.req.header("cf-connecting-ip") ?? "unknown";
  if (!(await c.env.FORM_RATE_LIMITER.limit({ key: `forms:${ip}` })).success) {
    log.warn("form.rejected", { reason: "rate_limited" });
    c.header("Retry-After", String(RATE_LIMIT_PERIOD_SECONDS));
    throw new AppError(429, "rate_limited", "Too many forms from this address; try again in a minute");
  }

  // Secret fields go first, so neither the lead nor its idempotency key (a hash of the content) holds one.
  const fields = withoutSecretFields(await readFields(c));
  const now = new Date();
  const key = formKey(await sha256Hex(formFingerprint(fields, now)));
  const accepted = () => {
    if (!wantsRedirect(c)) return c.json({ status: "accepted", id: key }, 202);
    const target = redirectTarget(c, fields, config.ALLOWED_ORIGINS.allows);
    return target ? c.redirect(target, 303) : c.html(THANK_YOU_PAGE, 200);
  };

  // A bot filled the field people cannot see: answer as if accepted, so it learns nothing.
  if (fields._hp?.trim()) {
    log.info("form.dropped", { reason: "honeypot" });
    return accepted();
  }
  const submission = readFormSubmission(fields, { key, receivedAt: now, defaultRegion: config.DEFAULT_PHONE_REGION });
  if (!submission.ok) {
    log.info("form.rejected", { reason: "invalid", fields: submission.issues.map((i) => i.path) });
    throw new AppError(400, "invalid_form", "The form needs a valid phone or email", submission.issues);
  }
  const { event } = submission;
  const job = leadJob(config.portal, event, c.get("requestId"));
  await c.env.LEAD_JOBS.send(job, { contentType: "json" });
  log.info("form.accepted", { key, phone: event.phone ? maskPhone(event.phone) : null, hasEmail: event.email !== null });
  await recordQuietly(activityOf(c.env, config.portal)?.record("form", now), log);
  if (config.COMAGIC_FORMS) await recordFormForComagic(c.env, config, event, now, log);
  if (metricaFor(config) || ga4For(config)) await recordFormVisitor(c.env, config, event, now, log);
  return accepted();
});

/**
 * COMAGIC_FORMS: the form goes to CoMagic as an offline message once its lead is written (jobs/form-uploads.ts). A
 * form CoMagic could not take (no phone or email, no session or site) is said in the log; a failed write too, and
 * the form's lead is not held up by either.
 */
async function recordFormForComagic(env: Env, config: Config, event: LeadEvent, now: Date, log: Logger): Promise<void> {
  const forms = storesFor(env, config.portal).formUploads;
  if (!forms) return;
  const built = offlineMessageOf(event, { siteId: config.COMAGIC_FORM_SITE_ID ?? null, timeZone: config.COMAGIC_TIMEZONE }, now.getTime());
  if (!built.ok) {
    log.info("form.not_for_comagic", { key: event.key, reason: built.reason });
    return;
  }
  await forms.add(event.key, built.message, now).catch((error: unknown) => log.warn("form.comagic_record_failed", { key: event.key, error: errorMessage(error) }));
}

/** The ad platforms' ids the snippet sent (`_ym_uid`, `yclid`, `_ga`), for this form's conversions (jobs/conversions.ts). */
async function recordFormVisitor(env: Env, config: Config, event: LeadEvent, now: Date, log: Logger): Promise<void> {
  const ids = event.form?.clickIds ?? {};
  await storesFor(env, config.portal)
    .formVisitors?.record(event.key, { ymUid: ids.ym_uid ?? null, yclid: ids.yclid ?? null, gaClientId: ids.ga_client_id ?? null }, now)
    .catch((error: unknown) => log.warn("form.visitor_unsaved", { key: event.key, error: errorMessage(error) }));
}

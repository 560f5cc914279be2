/*
 * Click-to-call from a card's tab: the signed tab token names the portal (its member_id), the user and the card; one
 * call per token, toll-fraud caps, then CoMagic's start.employee_call (bitrix-app/call.ts).
 */
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { startCall } from "../bitrix-app/call";
import { BitrixError } from "../bitrix/errors";
import { verifyTabToken } from "../bitrix-app/tab-token";
import { callCountries, comagicAuth } from "../config";
import type { CallRefusal } from "../domain/call-policy";
import { formatComagicDateTime } from "../domain/comagic-time";
import { AppError } from "../errors";
import { languageOf, messagesFor } from "../i18n";
import { crmTexts } from "../i18n/crm-texts";
import { callRecordJob } from "../jobs/schema";
import { errorMessage } from "../log";
import { callApiClientFor, dataApiClientFor } from "../wiring";
import { limitBody } from "./body-limit";
import { callRefusalText } from "./bitrix-tab-page";
import { APP_MAX_BYTES, appContext, RATE_LIMIT_PERIOD_SECONDS, tabTokenKeys } from "./bitrix-app-context";

/** Each click-to-call refusal as the tab's script sees it: 409 asks for a reopen, 429 to wait, 502/503 that a service failed. */
const CALL_REFUSAL_STATUS = {
  not_configured: 503,
  no_phone: 422,
  number_not_allowed: 422,
  number_changed: 409,
  user_not_mapped: 422,
  daily_limit: 429,
  comagic_refused: 502,
} as const satisfies Record<CallRefusal["code"], number>;

const callBody = z.object({ token: z.string().min(10).max(2000), lang: z.string().max(10).optional() });

export const bitrixCallRoute = new Hono<AppEnv>();

bitrixCallRoute.use("*", limitBody(APP_MAX_BYTES));

bitrixCallRoute.post("/call", async (c) => {
  const body = callBody.safeParse(await c.req.json().catch(() => null));
  const messages = messagesFor(languageOf(body.data?.lang));
  const say = messages.callRefusals;
  const claims = body.success ? await verifyTabToken(body.data.token, tabTokenKeys(c), Date.now() / 1000) : null;
  if (!claims) {
    c.get("log").warn("call.refused", { reason: "invalid_token" });
    throw new AppError(401, "invalid_token", say.invalid_token);
  }
  // The token names its portal: the settings, guards and tokens are that portal's.
  const { config, installs, appClient, callGuard } = await appContext(c, claims.memberId);
  const log = c.get("log");
  const audit = { memberId: claims.memberId, userId: claims.userId, entityId: claims.entityId };
  log.info("call.requested", audit);
  if (!c.env.CALL_RATE_LIMITER) throw new AppError(503, "not_configured", say.not_configured);
  if (!(await c.env.CALL_RATE_LIMITER.limit({ key: `call:${claims.memberId}:${claims.userId}` })).success) {
    log.warn("call.refused", { ...audit, reason: "rate_limited" });
    c.header("Retry-After", String(RATE_LIMIT_PERIOD_SECONDS));
    throw new AppError(429, "rate_limited", say.rate_limited);
  }
  const guard = callGuard;
  // D1's unique key makes this atomic: of any number of parallel requests with one token, one goes on.
  if (!(await guard.claimToken(claims.nonce, new Date()))) {
    log.warn("call.refused", { ...audit, reason: "already_started" });
    throw new AppError(409, "already_started", say.already_started);
  }
  const install = await installs.get(claims.memberId);
  if (!install) throw new AppError(401, "not_installed", say.not_installed);
  const now = new Date();
  const day = formatComagicDateTime(now, config.COMAGIC_TIMEZONE).slice(0, 10);
  const outcome = await startCall(claims, {
    appClient: appClient(install),
    employees: config.COMAGIC_EMPLOYEES ?? {},
    matchByEmail: config.COMAGIC_MATCH_BY_EMAIL,
    dataApi: dataApiClientFor(config, c.env, "feed"),
    callApi: callApiClientFor(config, c.env),
    virtualNumber: config.COMAGIC_VIRTUAL_NUMBER,
    defaultRegion: config.DEFAULT_PHONE_REGION,
    callCountries: callCountries(config),
    countCall: () => guard.countCall(day, { user: `${claims.memberId}:${claims.userId}`, portal: claims.memberId }, { user: config.CALL_DAILY_LIMIT_PER_USER, portal: config.CALL_DAILY_LIMIT }),
    now: () => now,
    texts: crmTexts(config.CRM_LANGUAGE),
  }).catch(async (error: unknown) => {
    // Bitrix24 busy or down while reading the lead: CoMagic was not asked, so the same button may try again.
    if (!(error instanceof BitrixError)) throw error;
    await guard.releaseToken(claims.nonce);
    log.warn("call.refused", { ...audit, reason: "bitrix_unavailable", code: error.code });
    throw new AppError(503, "bitrix_unavailable", say.bitrix_unavailable);
  });
  if (!outcome.ok) {
    // Never after CoMagic was asked: a second request with this token must not dial again.
    if (!outcome.askedCoMagic) await guard.releaseToken(claims.nonce);
    log.warn("call.refused", { ...audit, reason: outcome.refusal.code });
    throw new AppError(CALL_REFUSAL_STATUS[outcome.refusal.code], outcome.refusal.code, callRefusalText(messages, outcome.refusal));
  }
  log.info("call.started", { ...audit, callSessionId: outcome.callSessionId, timelineRecorded: outcome.timelineRecorded });
  // Once CoMagic's report has the call (its duration and recording), it becomes an outbound Bitrix24 call.
  if (c.env.ENRICH_JOBS && outcome.telephonyEntity && comagicAuth(config)) {
    const job = callRecordJob({
      portal: config.portal,
      requestId: c.get("requestId"),
      entityId: claims.entityId,
      sessionId: outcome.callSessionId,
      calledAt: now.toISOString(),
      visitorId: null,
      recordingUrl: null,
      outbound: { crmEntity: outcome.telephonyEntity, userId: claims.userId, phone: outcome.phone },
    });
    await c.env.ENRICH_JOBS.send(job, { contentType: "json", delaySeconds: config.ENRICH_DELAY_SECONDS }).catch((error: unknown) =>
      log.warn("telephony.enqueue_failed", { ...audit, error: errorMessage(error) }),
    );
  }
  return c.json({ status: "started", callSessionId: outcome.callSessionId });
});

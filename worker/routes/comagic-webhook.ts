import { Hono } from "hono/tiny";
import type { AppEnv } from "./app-env";
import { limitBody } from "./body-limit";
import { verifyWebhook } from "../comagic/webhook-auth";
import { parseNotificationJson } from "../comagic/notification-body";
import { parseNotification } from "../comagic/notification-schema";
import { comagicAuth } from "../config";
import { DEFAULT_PORTAL, portalKeySchema } from "../domain/portal-key";
import { requirePortalConfig } from "../portal-config";
import { classifySession } from "../domain/comagic-session";
import { maskPhone } from "../domain/phone";
import { AppError } from "../errors";
import { comagicFetchJob, leadJob } from "../jobs/schema";
import { activityOf, type ActivitySource, recordQuietly } from "../storage/portal-activity";

/** CoMagic notifications are small; 64 KiB leaves room for long tag lists and stops abuse early. */
export const WEBHOOK_MAX_BYTES = 64 * 1024;

function parseJson(raw: ArrayBuffer): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new AppError(400, "invalid_json", "The body is not valid UTF-8");
  }
  const body = parseNotificationJson(text);
  if (body === undefined) throw new AppError(400, "invalid_json", "The body is not JSON, even allowing for unfilled template variables");
  return body;
}

/**
 * `/webhooks/comagic` (the default portal) and `/webhooks/comagic/<portal key>`: each portal checks its own token
 * or signature, so a token of one portal is refused on another's URL, and an unknown portal is a 404.
 */
export const comagicWebhookRoute = new Hono<AppEnv>().post("/:portal?", limitBody(WEBHOOK_MAX_BYTES), async (c) => {
  const portal = portalKeySchema.safeParse(c.req.param("portal") ?? DEFAULT_PORTAL);
  if (!portal.success) throw new AppError(404, "unknown_portal", "No such portal");
  const config = await requirePortalConfig(c.env, portal.data);
  const log = c.get("log").child({ portal: config.portal });
  const raw = await c.req.arrayBuffer();
  const verified = await verifyWebhook({ token: c.req.query("token") ?? null, signature: c.req.header("X-CoMagic-Signature") ?? null }, raw, {
    tokens: config.COMAGIC_WEBHOOK_TOKEN,
    secrets: config.COMAGIC_WEBHOOK_SECRET,
  });
  if (!verified) {
    log.warn("webhook.rejected", { reason: "credentials" });
    throw new AppError(401, "unauthorized", "Missing or invalid webhook token or signature");
  }

  const notification = parseNotification(parseJson(raw));
  // Every verified notification counts as one (the agency page's "last notification"), and the event it brings as one of its source.
  const receivedAt = new Date();
  const noted = (source?: ActivitySource) => recordQuietly(activityOf(c.env, config.portal)?.recordNotification(receivedAt, source), log);
  if (notification.type === "fetch") {
    // Read through the Data API on the enrichment queue (jobs/comagic-fetch.ts); without it, the feed cannot read it either.
    if (!c.env.ENRICH_JOBS || !comagicAuth(config)) {
      log.warn("webhook.ignored", { reason: "no_data_api", kind: notification.kind });
      await noted();
      return c.json({ status: "ignored", reason: "the CoMagic Data API is not configured, so the worker cannot read this chat or request" }, 200);
    }
    await c.env.ENRICH_JOBS.send(comagicFetchJob(config.portal, notification, c.get("requestId"), new Date()), { contentType: "json" });
    log.info("webhook.accepted", { fetch: notification.kind, field: notification.field, id: notification.id });
    await noted(notification.kind);
    return c.json({ status: "accepted", fetch: notification.kind, id: notification.id }, 202);
  }
  if (notification.type === "unknown_event") {
    log.info("webhook.ignored", { reason: "unknown_event_type", eventType: notification.eventType.slice(0, 60) });
    await noted();
    return c.json({ status: "ignored", reason: `unknown event_type "${notification.eventType.slice(0, 60)}"` }, 200);
  }
  const classified = classifySession(notification.session, {
    defaultRegion: config.DEFAULT_PHONE_REGION,
    minLostCallSeconds: config.MIN_LOST_CALL_SECONDS,
    receivedAt,
  });
  if (classified.status === "ignored") {
    log.info("webhook.ignored", { reason: classified.reason, sessionId: notification.session.id });
    await noted();
    return c.json({ status: "ignored", reason: classified.reason }, 200);
  }

  const { event } = classified;
  const job = leadJob(config.portal, event, c.get("requestId"));
  await c.env.LEAD_JOBS.send(job, { contentType: "json" });
  log.info("webhook.accepted", { key: event.key, kind: event.kind, phone: event.phone ? maskPhone(event.phone) : null });
  await noted(event.kind);
  return c.json({ status: "accepted", id: event.key }, 202);
});

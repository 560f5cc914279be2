import { Hono } from "hono";

/*
 * A stand-in for the chat hook a deployment's ALERT_WEBHOOK_URL names (a Slack incoming webhook, a Telegram bot
 * bridge): `POST /_sandbox/alerts` takes `{"text": "…"}` and answers `ok` as Slack does; a body that is not JSON is
 * `400 invalid_payload`, one without a text `400 no_text` (Slack's own answers). `GET /_sandbox/alerts` lists what it
 * received, oldest first, with when; `DELETE /_sandbox/alerts` forgets it. `POST /_sandbox/alerts/fail {"times": n}`
 * makes the next n posts answer 500, as a hook that is down would.
 */

export function createAlertReceiver() {
  const received: { text: string; at: string }[] = [];
  let failures = 0;
  const app = new Hono();
  app.post("/_sandbox/alerts", async (c) => {
    if (failures > 0) {
      failures -= 1;
      return c.text("internal_error", 500);
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.text("invalid_payload", 400);
    }
    const text = (body as { text?: unknown } | null)?.text;
    if (typeof text !== "string" || text.trim() === "") return c.text("no_text", 400);
    received.push({ text, at: new Date().toISOString() });
    return c.text("ok", 200);
  });
  app.get("/_sandbox/alerts", (c) => c.json({ alerts: received }));
  app.delete("/_sandbox/alerts", (c) => {
    received.length = 0;
    failures = 0;
    return c.body(null, 204);
  });
  app.post("/_sandbox/alerts/fail", async (c) => {
    const times = Number(((await c.req.json().catch(() => ({}))) as { times?: unknown }).times ?? 1);
    failures = Number.isInteger(times) && times > 0 ? Math.min(times, 100) : 1;
    return c.json({ failing: failures });
  });
  return { app };
}

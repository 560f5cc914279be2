import { Hono } from "hono/tiny";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { ZodError } from "zod";
import { AppError } from "./errors";
import { createLogger, errorMessage } from "./log";
import { adminRoute } from "./routes/admin";
import { agencyRoute } from "./routes/agency";
import { agencyPageRoute } from "./routes/agency-page";
import { bitrixCallRoute } from "./routes/bitrix-call";
import { bitrixInstallRoute } from "./routes/bitrix-install";
import { bitrixTabRoute } from "./routes/bitrix-tab";
import { bitrixReportRoute } from "./routes/bitrix-report";
import { bitrixSettingsRoute } from "./routes/bitrix-settings";
import { comagicWebhookRoute } from "./routes/comagic-webhook";
import { formsRoute } from "./routes/forms";
import { healthRoute } from "./routes/health";
import { portalSnippetRoute, snippetRoute } from "./routes/snippet";
import type { AppEnv } from "./routes/app-env";

export const app = new Hono<AppEnv>();

app.use(requestId({ headerName: "X-Request-Id" }));
app.use(async (c, next) => {
  c.set("log", createLogger({ requestId: c.get("requestId") }));
  await next();
});

app.route("/webhooks/comagic", comagicWebhookRoute);
app.route("/forms", formsRoute);
app.route("/snippet.js", snippetRoute);
app.route("/s", portalSnippetRoute);
app.route("/health", healthRoute);
app.route("/admin", adminRoute);
// After adminRoute: its middleware (the ADMIN_TOKEN bearer, the lockout) runs first for /admin/agency too.
app.route("/admin/agency", agencyRoute);
app.route("/agency", agencyPageRoute);
app.route("/bitrix", bitrixInstallRoute);
app.route("/bitrix", bitrixTabRoute);
app.route("/bitrix", bitrixCallRoute);
app.route("/bitrix", bitrixReportRoute);
app.route("/bitrix", bitrixSettingsRoute);

app.notFound((c) => c.json({ error: "not_found", message: `No route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

app.onError((error, c) => {
  const log = c.get("log") ?? createLogger({ requestId: c.get("requestId") });
  if (error instanceof AppError) {
    if (error.status === 401) c.header("Cache-Control", "no-store");
    return c.json({ error: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) }, error.status);
  }
  if (error instanceof ZodError) {
    const issues = error.issues.slice(0, 20).map((issue) => ({ path: issue.path.join(".") || "(body)", message: issue.message }));
    log.warn("request.invalid", { path: new URL(c.req.url).pathname, issues });
    return c.json({ error: "invalid_body", message: "The body is not a valid request", issues }, 400);
  }
  // An HTTPException made with a response of its own (hono/bearer-auth's 401 with WWW-Authenticate) keeps it.
  if (error instanceof HTTPException) {
    const res = error.getResponse();
    if (res.status === 401) res.headers.set("Cache-Control", "no-store");
    return res;
  }
  log.error("request.failed", { path: new URL(c.req.url).pathname, error: errorMessage(error) });
  return c.json({ error: "internal_error", message: "Something went wrong; the request id is in X-Request-Id" }, 500);
});

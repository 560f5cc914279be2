import { randomBytes } from "node:crypto";
import { type Context, Hono } from "hono";
import { createAppEvents, type EventDelivery } from "./app-events";
import { type Portal, RestError } from "./portal";

/*
 * The application side of Bitrix24 (FACTS.md §1.2–1.4): a local app with OAuth tokens that expire
 * (`expired_token`, HTTP 401), refreshed at the OAuth server with a new refresh token each time,
 * app-only methods (app.info, placement.*) refused to webhooks, and the placement POST a card makes.
 * A portal served under a path prefix (`/p/<name>`) names it in `client_endpoint`; the OAuth server stays one for
 * all portals (`server_endpoint`, FACTS-portals §9: oauth.bitrix.info), so the server's root `/oauth/token/`
 * refreshes every portal's tokens (`ownsRefreshToken`, `tokenAnswer`).
 * Removing the app (`POST /_sandbox/bitrix/app/uninstall`) does what Bitrix24 does (onappuninstall.php): the app's
 * tokens stop working at once, its placements and event handlers go, and ONAPPUNINSTALL is POSTed to the handlers it
 * bound, with the install's application_token (FACTS.md §1.2: the only proof of origin the event carries).
 */

export interface AppSettings {
  clientId: string;
  clientSecret: string;
  memberId: string;
  tokenLifetimeSeconds: number;
}

interface Grant {
  userId: number;
  expiresAt: number;
  /** Which application the token belongs to: ours, or another app installed on the same portal. */
  app: "ours" | "other";
}

/** A second application installed on the portal: its tokens work for app.info too (FACTS-portals: CODE tells them apart). */
export const OTHER_APP = { code: "local.other-vendor-app", applicationToken: "other-app-application-token" };

/** What the OAuth server answers a token request with: a status and a JSON body. */
/** A token request's parameters: the query of a GET, the form of a POST. */
export async function tokenForm(c: Context): Promise<Record<string, string | undefined>> {
  return c.req.method === "POST" ? ((await c.req.parseBody()) as Record<string, string>) : c.req.query();
}

export interface TokenAnswer {
  status: 200 | 400 | 401;
  body: Record<string, unknown>;
}

/** `users` are the portal's (its admins); `basePath` is where the portal is served ("" or "/p/<name>"). */
export function createOAuthApp(settings: AppSettings, portal: { users: Portal["users"]; basePath?: string }) {
  const basePath = portal.basePath ?? "";
  const users = portal.users;
  const access = new Map<string, Grant>();
  const refresh = new Map<string, { userId: number; app: Grant["app"] }>();
  const placements: { placement: string; handler: string; title: string; titles?: Record<string, string> }[] = [];
  const stats = { refreshes: 0, issued: 0 };
  // The install's application_token (FACTS.md §1.3–1.4), sent again with every placement request.
  const applicationToken = randomBytes(16).toString("hex");
  const grants = new Map<string, Grant["app"]>();
  const events = createAppEvents();
  // Whether our app is installed: false once removed, until `POST /_sandbox/bitrix/app/install` (or a reset).
  let installed = true;

  function issue(userId: number, app: Grant["app"] = "ours") {
    const accessToken = randomBytes(16).toString("hex");
    const refreshToken = randomBytes(16).toString("hex");
    grants.set(accessToken, app);
    access.set(accessToken, { userId, expiresAt: Date.now() + settings.tokenLifetimeSeconds * 1000, app });
    refresh.set(refreshToken, { userId, app });
    stats.issued += 1;
    return { accessToken, refreshToken, expiresIn: settings.tokenLifetimeSeconds };
  }

  /** The application a token belongs to (app.info answers with its CODE). */
  const appOf = (token: unknown): Grant["app"] => (typeof token === "string" ? (grants.get(token) ?? "ours") : "ours");

  /** The user an app token stands for, or the REST error Bitrix24 answers with. */
  function userOf(token: unknown): number {
    if (typeof token !== "string" || token === "") throw new RestError(401, "NO_AUTH_FOUND", "Wrong authorization data");
    const grant = access.get(token);
    if (!grant) throw new RestError(401, "invalid_token", "Token expired or invalid");
    if (Date.now() >= grant.expiresAt) throw new RestError(401, "expired_token", "The access token provided has expired.");
    return grant.userId;
  }

  /** Methods only an application may call; `userId` is null for a webhook. */
  function appMethod(method: string, params: Record<string, unknown>, userId: number | null, app: Grant["app"] = "ours"): { result: unknown; total?: number; next?: number } | null {
    if (method.startsWith("event.")) {
      const admin = users.find((u) => u.ID === userId)?.ADMIN ?? false;
      return events.method(method, params, userId === null ? null : { id: userId, admin }, app);
    }
    const appOnly = method === "app.info" || method.startsWith("placement.");
    if (!appOnly && method !== "profile") return null;
    if (userId === null) {
      if (method === "app.info") throw new RestError(403, "ACCESS_DENIED", "Access denied! Application context required");
      if (appOnly) throw new RestError(403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method");
    }
    const user = users.find((u) => u.ID === (userId ?? 1));
    switch (method) {
      case "profile":
        return { result: { ID: String(user?.ID), ADMIN: user?.ADMIN ?? false, NAME: user?.NAME, LAST_NAME: user?.LAST_NAME, PERSONAL_GENDER: "", TIME_ZONE: "" } };
      case "app.info":
        return {
          result: {
            ID: app === "ours" ? 5 : 6,
            CODE: app === "ours" ? settings.clientId : OTHER_APP.code,
            VERSION: 1,
            STATUS: "L",
            INSTALLED: true,
            PAYMENT_EXPIRED: "N",
            DAYS: null,
            LANGUAGE_ID: "ru",
            LICENSE: "ru_project",
          },
        };
      case "placement.get":
        return { result: placements.map((p) => ({ placement: p.placement, handler: p.handler, title: p.title, options: [] })) };
      case "placement.bind": {
        if (!user?.ADMIN) throw new RestError(403, "ACCESS_DENIED", "Access denied! Portal admin rights required");
        const placement = String(params.PLACEMENT ?? "");
        const handler = String(params.HANDLER ?? "");
        if (!placement) throw new RestError(400, "ERROR_ARGUMENT", "Argument 'PLACEMENT' is null or empty");
        if (!handler) throw new RestError(400, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty");
        if (!/^https?:\/\/[^/]+\.[^/]+/.test(handler) && !/^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(handler)) {
          throw new RestError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL");
        }
        if (placements.some((p) => p.placement === placement && p.handler === handler)) {
          throw new RestError(400, "ERROR_PLACEMENT_HANDLER_ALREADY_BINDED", "Handler already binded");
        }
        // LANG_ALL{lang:{TITLE,…}}: what each interface language shows (FACTS.md §1.3); kept as language → title.
        const langAll = (params.LANG_ALL ?? {}) as Record<string, { TITLE?: unknown }>;
        const titles = Object.fromEntries(Object.entries(langAll).map(([lang, texts]) => [lang, String(texts?.TITLE ?? "")]));
        placements.push({ placement, handler, title: String(params.TITLE ?? ""), ...(Object.keys(titles).length ? { titles } : {}) });
        return { result: true };
      }
      default:
        throw new RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
    }
  }

  /** The OAuth server's answer to a token request (oauth.bitrix.info/oauth/token/) made on `origin`. */
  function tokenAnswer(form: Record<string, string | undefined>, origin: string): TokenAnswer {
    if (form.client_id !== settings.clientId || form.client_secret !== settings.clientSecret) {
      return { status: 401, body: { error: "invalid_client", error_description: "Invalid client" } };
    }
    if (form.grant_type !== "refresh_token") return { status: 400, body: { error: "invalid_request", error_description: "grant_type" } };
    const grant = refresh.get(String(form.refresh_token));
    if (grant === undefined) return { status: 400, body: { error: "invalid_grant", error_description: "Invalid refresh token" } };
    const userId = grant.userId;
    refresh.delete(String(form.refresh_token));
    stats.refreshes += 1;
    const pair = issue(userId, grant.app);
    return {
      status: 200,
      body: {
        access_token: pair.accessToken,
        refresh_token: pair.refreshToken,
        expires_in: pair.expiresIn,
        expires: Math.floor(Date.now() / 1000) + pair.expiresIn,
        member_id: settings.memberId,
        client_endpoint: `${origin}${basePath}/rest/`,
        // FACTS-portals: server_endpoint is the OAuth server's REST base (one for every portal); tokens refresh at its /oauth/token/.
        server_endpoint: `${origin}/rest/`,
        domain: "oauth.bitrix.info",
        scope: "crm,placement,user_basic,telephony",
        status: "L",
        user_id: userId,
      },
    };
  }

  const app = new Hono();
  // GET or form POST, as the SDKs send it (FACTS.md §1.2).
  app.on(["GET", "POST"], "/oauth/token/", async (c) => {
    const answer = tokenAnswer(await tokenForm(c), new URL(c.req.url).origin);
    return c.json(answer.body, answer.status);
  });

  /** The answer of /tokens and /install: a user's tokens as the portal hands them to the app. */
  function tokensAnswer(c: Context, userId: number, app: Grant["app"]) {
    const pair = issue(userId, app);
    return c.json({
      AUTH_ID: pair.accessToken,
      REFRESH_ID: pair.refreshToken,
      AUTH_EXPIRES: pair.expiresIn,
      member_id: settings.memberId,
      APPLICATION_TOKEN: app === "ours" ? applicationToken : OTHER_APP.applicationToken,
      SERVER_ENDPOINT: `${new URL(c.req.url).origin}/rest/`,
      // A host, as Bitrix24 sends it: portals under /p/<name> share it, their member_id tells them apart.
      DOMAIN: new URL(c.req.url).host,
    });
  }

  /** Tokens as the portal hands them to the app for a user (on install, or in a placement POST). */
  app.post("/_sandbox/bitrix/app/tokens", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { userId?: number; app?: Grant["app"] };
    const app = body.app ?? "ours";
    if (app === "ours" && !installed) return c.json({ error: "The app was removed from this portal: POST /_sandbox/bitrix/app/install to install it again" }, 409);
    return tokensAnswer(c, body.userId ?? 1, app);
  });
  /** Installs the app again after a removal (same application_token, no placements or handlers yet); answers as /tokens. */
  app.post("/_sandbox/bitrix/app/install", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { userId?: number };
    installed = true;
    return tokensAnswer(c, body.userId ?? 1, "ours");
  });
  /**
   * The administrator removes the app (`{"clean": true|false}`, the "delete the app's data" box; false when left
   * out): every token of the app stops working (calls: invalid_token, refresh: invalid_grant), then ONAPPUNINSTALL
   * goes to each handler bound to it, then the app's handlers and placements are deleted. `"deliver": false` only
   * builds the forms (a test in workerd posts them to the worker itself). Answers what was sent, and how it went.
   */
  app.post("/_sandbox/bitrix/app/uninstall", async (c) => {
    const body = (await c.req.json().catch(() => null)) as { clean?: unknown; deliver?: unknown } | null;
    if (body === null || typeof body !== "object") return c.json({ error: 'The body is JSON: {"clean": true|false}' }, 400);
    if (body.clean !== undefined && typeof body.clean !== "boolean") return c.json({ error: "clean must be true or false (the administrator's \"delete the app's data\" box)" }, 400);
    if (body.deliver !== undefined && typeof body.deliver !== "boolean") return c.json({ error: "deliver must be true or false" }, 400);
    if (!installed) return c.json({ error: "The app is not installed on this portal" }, 409);
    const clean = body.clean ?? false;
    installed = false;
    const revoked = { accessTokens: 0, refreshTokens: 0 };
    for (const [token, grant] of access) if (grant.app === "ours" && access.delete(token)) revoked.accessTokens += 1;
    for (const [token, grant] of refresh) if (grant.app === "ours" && refresh.delete(token)) revoked.refreshTokens += 1;
    const url = new URL(c.req.url);
    // The event's auth, as Sender::getAuth makes it: a token that no longer opens anything, no refresh token.
    const auth = {
      access_token: randomBytes(16).toString("hex"),
      expires_in: String(settings.tokenLifetimeSeconds),
      scope: "crm,placement,user_basic,telephony",
      domain: url.host,
      server_endpoint: `${url.origin}/rest/`,
      status: "L",
      client_endpoint: `${url.origin}${basePath}/rest/`,
      member_id: settings.memberId,
      application_token: applicationToken,
    };
    const delivered = await events.send("ours", "ONAPPUNINSTALL", { CLEAN: clean ? "1" : "0" }, auth, body.deliver !== false);
    events.removeApp("ours");
    placements.length = 0;
    return c.json({ ok: true, clean, revoked, delivered });
  });
  app.post("/_sandbox/bitrix/app/settings", async (c) => {
    Object.assign(settings, (await c.req.json()) as Partial<AppSettings>);
    return c.json({ ok: true });
  });
  /** Makes every token issued so far expire now (the refresh tokens stay good). */
  app.post("/_sandbox/bitrix/app/expire-tokens", (c) => {
    for (const grant of access.values()) grant.expiresAt = 0;
    return c.json({ ok: true });
  });
  /** An administrator gives or takes away a user's admin rights (`{userId, admin}`): `profile`'s ADMIN follows at once. */
  app.post("/_sandbox/bitrix/app/user", async (c) => {
    const body = (await c.req.json()) as { userId?: number; admin?: boolean };
    const user = users.find((u) => u.ID === body.userId);
    if (!user || typeof body.admin !== "boolean") return c.json({ error: "userId of a sandbox user and admin (boolean) are required" }, 400);
    user.ADMIN = body.admin;
    return c.json({ ok: true, user });
  });
  app.get("/_sandbox/bitrix/app/state", (c) => c.json({ installed, placements, events: events.bindings(), ...stats }));

  /**
   * The page a placement's iframe lives in (FACTS.md §1.3): the browser posts the placement form into the
   * frame with a fresh token for the user, `LANG` the user's interface language (?lang=, Russian by default).
   */
  function placementPage(
    c: Context,
    page: { title: string; header: string; css: string; frame: { id: string; title: string }; userId: number; placement: string; options: Record<string, string>; handler?: string },
  ): Response | Promise<Response> {
    // DEFAULT is not bindable (FACTS.md §1.3): the app's own page and its install open the paths it was registered with.
    const handler = page.handler ?? placements.find((p) => p.placement === page.placement)?.handler;
    if (!handler) return c.html(`<!doctype html><meta charset="utf-8"><p>The app is not installed yet: nothing is bound to ${page.placement}.</p>`, 404);
    const pair = issue(page.userId);
    const host = new URL(c.req.url).host;
    const fields = {
      AUTH_ID: pair.accessToken,
      AUTH_EXPIRES: String(pair.expiresIn),
      REFRESH_ID: pair.refreshToken,
      member_id: settings.memberId,
      status: "L",
      APPLICATION_TOKEN: applicationToken,
      PLACEMENT: page.placement,
      PLACEMENT_OPTIONS: JSON.stringify(page.options),
    };
    const inputs = Object.entries(fields)
      .map(([k, v]) => `<input type="hidden" name="${k}" value="${v.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}">`)
      .join("");
    const lang = encodeURIComponent(c.req.query("lang") ?? "ru");
    return c.html(`<!doctype html><html><head><meta charset="utf-8"><title>${page.title}</title>
<style>body{margin:0;font:14px Arial;background:#eef2f4}header{background:#fff;padding:14px 20px;border-bottom:1px solid #dfe3e6}${page.css}</style></head>
<body><header>${page.header}</header>
<form id="placement" method="post" target="${page.frame.id}" action="${handler}?DOMAIN=${encodeURIComponent(host)}&PROTOCOL=0&LANG=${lang}&APP_SID=sandbox">${inputs}</form>
<iframe name="${page.frame.id}" id="${page.frame.id}" title="${page.frame.title}"></iframe>
<script>document.getElementById("placement").submit();</script></body></html>`);
  }

  /** A lead card the way Bitrix24 shows the CoMagic tab (?user=2 for the sales manager). */
  app.get("/_sandbox/lead-card/:leadId", (c) => {
    const userId = Number(c.req.query("user") ?? 2);
    const leadId = c.req.param("leadId");
    const user = users.find((u) => u.ID === userId);
    return placementPage(c, {
      title: `Lead #${leadId}`,
      header: `<strong>Lead #${leadId}</strong> · signed in as ${user?.NAME ?? "?"} ${user?.LAST_NAME ?? ""} (sandbox)<nav><span>General</span><span class="on">CoMagic</span><span>History</span></nav>`,
      css: "nav span{display:inline-block;padding:8px 14px;color:#525c69}nav span.on{border-bottom:2px solid #2fc6f6;color:#000}iframe{border:0;width:100%;height:760px;background:#fff}",
      frame: { id: "tab", title: "CoMagic tab" },
      userId,
      placement: "CRM_LEAD_DETAIL_TAB",
      options: { ID: leadId, URI: `/crm/lead/details/${leadId}/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER` },
    });
  });

  /** The app as its developer registered it: its handler path (the app's own page) and install path. */
  let registered: { handler: string; install: string } | null = null;

  /**
   * An administrator installs the app (`?worker=<the worker's origin>`: the local app registered with the handler path
   * `/bitrix/app` and the install path `/bitrix/install`): the install path opens in a frame with the user's tokens as
   * a form (FACTS.md §1.2, app.layout's fields, PLACEMENT=DEFAULT), and the app calls BX24.installFinish() there.
   */
  app.get("/_sandbox/market/install", (c) => {
    const worker = c.req.query("worker") ?? "";
    if (!/^https?:\/\/[^/]+$/.test(worker)) return c.json({ error: "?worker= is the worker's origin, like http://127.0.0.1:8787" }, 400);
    registered = { handler: `${worker}/bitrix/app`, install: `${worker}/bitrix/install` };
    installed = true;
    return placementPage(c, {
      title: "Market · CoMagic",
      header: "<strong>Applications · Installing CoMagic</strong> (sandbox, user 1)",
      css: "iframe{border:0;width:100%;height:600px;background:#fff}",
      frame: { id: "install", title: "CoMagic install" },
      userId: Number(c.req.query("user") ?? 1),
      placement: "DEFAULT",
      options: {},
      handler: registered.install,
    });
  });

  /** The app's own page from the left menu or Applications (PLACEMENT=DEFAULT, its handler path). */
  app.get("/_sandbox/app/open", (c) => {
    const userId = Number(c.req.query("user") ?? 1);
    const handler = registered?.handler ?? placements.find((p) => p.placement === "CRM_ANALYTICS_MENU")?.handler;
    if (!handler) return c.html(`<!doctype html><meta charset="utf-8"><p>The app is not installed yet: open /_sandbox/market/install?worker=… first.</p>`, 404);
    return placementPage(c, {
      title: "CoMagic",
      header: `<strong>Applications · CoMagic</strong> (sandbox, user ${userId})`,
      css: "iframe{border:0;width:100%;height:1400px;background:#fff}",
      frame: { id: "app", title: "CoMagic" },
      userId,
      placement: "DEFAULT",
      options: {},
      handler,
    });
  });

  /** The app's own page as Bitrix24 opens it from CRM Analytics (FACTS-portals §9–10). */
  app.get("/_sandbox/app", (c) => {
    const userId = Number(c.req.query("user") ?? 1);
    return placementPage(c, {
      title: "CRM Analytics",
      header: `<strong>CRM Analytics · CoMagic</strong> (sandbox, user ${userId})`,
      css: "iframe{border:0;width:100%;height:900px;background:#fff}",
      frame: { id: "app", title: "CoMagic report" },
      userId,
      placement: "CRM_ANALYTICS_MENU",
      options: { URI: "/report/analytics/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" },
    });
  });

  return {
    app,
    appMethod,
    userOf,
    appOf,
    settings,
    tokenAnswer,
    ownsRefreshToken: (token: unknown) => refresh.has(String(token)),
    /** Where event POSTs go (ONAPPUNINSTALL): over HTTP unless a test captures them. */
    setEventDelivery: (deliver: EventDelivery) => events.setDelivery(deliver),
    /** A reset portal has the app installed again. */
    reinstall: () => {
      installed = true;
    },
  };
}

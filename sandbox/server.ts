/**
 * The local stand-ins on one port: the root portal (a Bitrix24 portal and a CoMagic account at the server's root,
 * as every test and `npm start` use it) and any number of named portals, each under `/p/<name>` with a Bitrix24
 * portal and a CoMagic account of its own: its own request bucket (per portal, FACTS.md §4.1), state, webhook code,
 * member_id and CoMagic login. The OAuth server is one for all of them, as oauth.bitrix.info is (FACTS-portals §9).
 * Named portals are made when the server starts, which is cheap (measured: 100 portals take 6 MB and 0.13 s, 9 MB
 * once each has answered a request; 1,000 take 55 MB and 1 s).
 * With `ownPorts`, each named portal is also the root of a port of its own, as a real portal is the root of its own
 * domain: an app that finds a portal's REST at `<origin>/rest/` can serve it. Its addresses (DOMAIN, client_endpoint,
 * webhook) then name that origin, and `/p/<name>` hands requests to it as if sent there.
 */
import { randomBytes } from "node:crypto";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { createBitrixSandbox, type BitrixSandboxOptions } from "./bitrix/app";
import { tokenForm } from "./bitrix/oauth-app";
import { createCallApiSandbox } from "./comagic/call-api";
import { createDataApiSandbox, type DataApiSettings } from "./comagic/data-api";
import { createAlertReceiver } from "./alerts";
import { createDemoSite } from "./demo";
import { createMetricaSandbox } from "./metrica";
import { createGa4Sandbox } from "./ga4";

/** One portal's stand-ins as a worker reaches them. */
export interface SandboxPortal {
  /**
   * Where its stand-ins are served (`${url}/_sandbox/leads` …): the origin for the root portal and for a named one
   * on a port of its own (`ownPorts`), else `${origin}/p/<name>`.
   */
  url: string;
  /** The Bitrix24 portal's member_id, as its app tokens and placement forms carry it. */
  memberId: string;
  bitrixWebhookUrl: string;
  dataApiUrl: string;
  callApiUrl: string;
  bitrix: ReturnType<typeof createBitrixSandbox>;
  /** The CoMagic account's login and password (Data API and Call API), as the portal was made with them. */
  comagic: { login: string; password: string };
}

export interface RunningSandbox extends SandboxPortal {
  /** The named portals, by name. */
  portals: Record<string, SandboxPortal>;
  close(): Promise<void>;
}

/** A portal's name is one path segment. */
const PORTAL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface StandIns {
  app: Hono;
  bitrix: ReturnType<typeof createBitrixSandbox>;
  dataApi: ReturnType<typeof createDataApiSandbox>;
}

/** A Bitrix24 portal and a CoMagic account (Data API, Call API) served under `basePath` ("" for the root portal). */
function createStandIns(basePath: string, bitrixOptions: BitrixSandboxOptions = {}, account?: { login: string; password: string }): StandIns {
  const bitrix = createBitrixSandbox({ ...bitrixOptions, basePath });
  const dataApi = createDataApiSandbox({ account });
  const app = new Hono();
  const at = basePath || "/";
  app.route(at, bitrix.app);
  app.route(at, dataApi.app);
  app.route(at, createCallApiSandbox(dataApi.credentials, dataApi.recordCall).app);
  return { app, bitrix, dataApi };
}

/**
 * A named portal: a webhook code and a CoMagic password of its own, so one portal's credentials open no other. One
 * with an origin of its own is served at that origin's root, else under `/p/<name>`.
 */
function createNamedPortal(name: string, ownOrigin: string | undefined): StandIns {
  const secret = () => randomBytes(12).toString("hex");
  const basePath = ownOrigin ? "" : `/p/${name}`;
  return createStandIns(basePath, { webhookCode: secret(), app: { memberId: `sandbox-member-${name}` } }, { login: `sandbox-${name}`, password: secret() });
}

/** The request as if sent to `url`: how `/p/<name>` reaches a portal served at the root of its own origin. */
function resent(request: Request, url: string): Request {
  const body = request.method === "GET" || request.method === "HEAD" ? null : request.body;
  // Node's fetch streams a request body only with duplex "half"; lib.dom's RequestInit does not name it yet.
  return new Request(url, { method: request.method, headers: request.headers, body, duplex: "half" } as RequestInit);
}

export interface SandboxOptions {
  bitrix?: BitrixSandboxOptions;
  comagic?: Partial<DataApiSettings>;
  demoWorkerUrl?: string;
  /** The portals served under `/p/<name>` besides the root one. */
  portals?: string[];
  /**
   * Named portals served at the root of an origin of their own (startSandbox's `ownPorts` opens them): their
   * addresses name it, and `/p/<name>` reaches them too.
   */
  ownOrigins?: Record<string, string>;
}

/**
 * The stand-ins as one Hono app (the tests call `app.request()`), each named portal with an origin of its own as an
 * app to serve there (`ownApps`), and what a worker needs to reach each portal once the app is served at `origin`.
 */
export function createSandbox(options: SandboxOptions = {}): { app: Hono; ownApps: Record<string, Hono>; describe(origin: string): Omit<RunningSandbox, "close"> } {
  const named = new Map<string, StandIns>();
  const ownOrigins = options.ownOrigins ?? {};
  for (const name of options.portals ?? []) {
    if (!PORTAL_NAME.test(name)) throw new Error(`A portal's name is a path segment of a-z, 0-9 and "-": ${JSON.stringify(name)}`);
    if (named.has(name)) throw new Error(`The portal ${name} is named twice`);
    named.set(name, createNamedPortal(name, ownOrigins[name]));
  }
  const unknown = Object.keys(ownOrigins).filter((name) => !named.has(name));
  if (unknown.length) throw new Error(`ownOrigins names portals that portals does not: ${unknown.join(", ")}`);
  const root = createStandIns("", options.bitrix);
  if (options.comagic) root.dataApi.setSettings(options.comagic);

  const app = new Hono();
  app.all("/p/:name/*", (c) => {
    const name = c.req.param("name");
    const portal = named.get(name);
    if (!portal) return c.json({ error: `No portal is named ${name}: startSandbox({ portals }) names them` }, 404);
    const own = ownOrigins[name];
    if (!own) return portal.app.fetch(c.req.raw, c.env);
    const url = new URL(c.req.url);
    return portal.app.fetch(resent(c.req.raw, `${own}${url.pathname.slice(`/p/${name}`.length)}${url.search}`), c.env);
  });
  // One OAuth server for every portal: a refresh token goes back to the portal that issued it, else to the root one.
  app.on(["GET", "POST"], "/oauth/token/", async (c) => {
    const form = await tokenForm(c);
    const issuer = [...named].find(([, portal]) => portal.bitrix.oauth.ownsRefreshToken(form.refresh_token));
    const answer = (issuer?.[1] ?? root).bitrix.oauth.tokenAnswer(form, new URL(c.req.url).origin);
    // server_endpoint stays this server's; client_endpoint is where the portal is, its own origin when it has one.
    const own = issuer && ownOrigins[issuer[0]];
    return c.json(own && answer.status === 200 ? { ...answer.body, client_endpoint: `${own}/rest/` } : answer.body, answer.status);
  });
  app.route("/", root.app);
  // The deployment's alert hook (ALERT_WEBHOOK_URL): one for every portal, as a deployment has one.
  app.route("/", createAlertReceiver().app);
  // Yandex Metrica's offline-conversions API (issue #25 §3): one for every portal, as api-metrika.yandex.net is.
  app.route("/", createMetricaSandbox().app);
  // Google Analytics 4's Measurement Protocol (issue #25 §3): one for every portal, as www.google-analytics.com is.
  app.route("/", createGa4Sandbox().app);
  if (options.demoWorkerUrl) app.route("/", createDemoSite(options.demoWorkerUrl));
  app.get("/", (c) => c.redirect("/_sandbox"));
  app.get("/favicon.ico", (c) => c.body(null, 204));
  const describePortal = (standIns: StandIns, origin: string, base: string): SandboxPortal => ({
    url: base,
    memberId: standIns.bitrix.oauth.settings.memberId,
    bitrixWebhookUrl: `${origin}${standIns.bitrix.webhookPath}`,
    dataApiUrl: `${base}/comagic/dataapi/v2.0`,
    callApiUrl: `${base}/comagic/callapi/v4.0`,
    bitrix: standIns.bitrix,
    comagic: standIns.dataApi.credentials(),
  });
  const ownApps = Object.fromEntries([...named].filter(([name]) => ownOrigins[name]).map(([name, standIns]) => [name, standIns.app]));
  return {
    app,
    ownApps,
    describe: (origin) => ({
      ...describePortal(root, origin, origin),
      portals: Object.fromEntries(
        [...named].map(([name, standIns]) => {
          const own = ownOrigins[name];
          return [name, own ? describePortal(standIns, own, own) : describePortal(standIns, origin, `${origin}/p/${name}`)];
        }),
      ),
    }),
  };
}

type Fetch = (request: Request, env: unknown) => Response | Promise<Response>;

/** A server on `host:port` (0: a free one) whose answers come from `handler()`, which may be set after it listens. */
async function listen(handler: () => Fetch, host: string, port: number | undefined): Promise<{ server: ServerType; url: string }> {
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: (request, env) => handler()(request, env), port: port ?? 0, hostname: host }, () => resolve(s));
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new Error(`Port ${port} is taken: is another \`npm start\` running? (set SANDBOX_PORT to move it)`) : error),
    );
  });
  const address = server.address();
  return { server, url: `http://${host}:${typeof address === "object" && address ? address.port : port}` };
}

/**
 * Starts the stand-ins (and a demo website when given the worker URL) on one port; port 0 picks a free one. With
 * `ownPorts`, each named portal also gets a free port of its own, whose root it is.
 */
export async function startSandbox(options: SandboxOptions & { port?: number; host?: string; ownPorts?: boolean } = {}): Promise<RunningSandbox> {
  const host = options.host ?? "127.0.0.1";
  // The ports open first, so that each portal is made knowing its origin; none answers before the apps are made.
  let apps: ReturnType<typeof createSandbox> | undefined;
  const notYet: Fetch = () => new Response("The sandbox is starting", { status: 503 });
  const main = await listen(() => apps?.app.fetch ?? notYet, host, options.port);
  const own = options.ownPorts ? await Promise.all((options.portals ?? []).map(async (name) => ({ name, ...(await listen(() => apps?.ownApps[name]?.fetch ?? notYet, host, 0)) }))) : [];
  const servers = [main.server, ...own.map((o) => o.server)];
  const close = () => Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined);
  try {
    apps = createSandbox({ ...options, ownOrigins: { ...options.ownOrigins, ...Object.fromEntries(own.map((o) => [o.name, o.url])) } });
  } catch (error) {
    await close();
    throw error;
  }
  return { ...apps.describe(main.url), close };
}

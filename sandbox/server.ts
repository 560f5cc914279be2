/**
 * The local stand-ins on one port: the root portal (a Bitrix24 portal and a CoMagic account at the server's root,
 * as every test and `npm start` use it) and any number of named portals, each under `/p/<name>` with a Bitrix24
 * portal and a CoMagic account of its own: its own request bucket (per portal, FACTS.md §4.1), state, webhook code,
 * member_id and CoMagic login. The OAuth server is one for all of them, as oauth.bitrix.info is (FACTS-portals §9).
 * Named portals are made when the server starts, which is cheap (measured: 100 portals take 6 MB and 0.13 s, 9 MB
 * once each has answered a request; 1,000 take 55 MB and 1 s).
 */
import { randomBytes } from "node:crypto";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { createBitrixSandbox, type BitrixSandboxOptions } from "./bitrix/app";
import { tokenForm } from "./bitrix/oauth-app";
import { createCallApiSandbox } from "./comagic/call-api";
import { createDataApiSandbox, type DataApiSettings } from "./comagic/data-api";
import { createDemoSite } from "./demo";

/** One portal's stand-ins as a worker reaches them. */
export interface SandboxPortal {
  /** Where its stand-ins are served (`${url}/_sandbox/leads` …): the origin for the root portal, `${origin}/p/<name>` for a named one. */
  url: string;
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

/** A named portal: a webhook code and a CoMagic password of its own, so one portal's credentials open no other. */
function createNamedPortal(name: string): StandIns {
  const secret = () => randomBytes(12).toString("hex");
  return createStandIns(`/p/${name}`, { webhookCode: secret(), app: { memberId: `sandbox-member-${name}` } }, { login: `sandbox-${name}`, password: secret() });
}

export interface SandboxOptions {
  bitrix?: BitrixSandboxOptions;
  comagic?: Partial<DataApiSettings>;
  demoWorkerUrl?: string;
  /** The portals served under `/p/<name>` besides the root one. */
  portals?: string[];
}

/**
 * The stand-ins as one Hono app (the tests call `app.request()`), and what a worker needs to reach each portal once
 * the app is served at `origin`.
 */
export function createSandbox(options: SandboxOptions = {}): { app: Hono; describe(origin: string): Omit<RunningSandbox, "close"> } {
  const named = new Map<string, StandIns>();
  for (const name of options.portals ?? []) {
    if (!PORTAL_NAME.test(name)) throw new Error(`A portal's name is a path segment of a-z, 0-9 and "-": ${JSON.stringify(name)}`);
    if (named.has(name)) throw new Error(`The portal ${name} is named twice`);
    named.set(name, createNamedPortal(name));
  }
  const root = createStandIns("", options.bitrix);
  if (options.comagic) root.dataApi.setSettings(options.comagic);

  const app = new Hono();
  app.all("/p/:name/*", (c) => {
    const portal = named.get(c.req.param("name"));
    return portal ? portal.app.fetch(c.req.raw, c.env) : c.json({ error: `No portal is named ${c.req.param("name")}: startSandbox({ portals }) names them` }, 404);
  });
  // One OAuth server for every portal: a refresh token goes back to the portal that issued it, else to the root one.
  app.on(["GET", "POST"], "/oauth/token/", async (c) => {
    const form = await tokenForm(c);
    const issuer = [...named.values()].find((portal) => portal.bitrix.oauth.ownsRefreshToken(form.refresh_token)) ?? root;
    const answer = issuer.bitrix.oauth.tokenAnswer(form, new URL(c.req.url).origin);
    return c.json(answer.body, answer.status);
  });
  app.route("/", root.app);
  if (options.demoWorkerUrl) app.route("/", createDemoSite(options.demoWorkerUrl));
  app.get("/", (c) => c.redirect("/_sandbox"));
  app.get("/favicon.ico", (c) => c.body(null, 204));
  const describePortal = (standIns: StandIns, origin: string, base: string): SandboxPortal => ({
    url: base,
    bitrixWebhookUrl: `${origin}${standIns.bitrix.webhookPath}`,
    dataApiUrl: `${base}/comagic/dataapi/v2.0`,
    callApiUrl: `${base}/comagic/callapi/v4.0`,
    bitrix: standIns.bitrix,
    comagic: standIns.dataApi.credentials(),
  });
  return {
    app,
    describe: (origin) => ({
      ...describePortal(root, origin, origin),
      portals: Object.fromEntries([...named].map(([name, standIns]) => [name, describePortal(standIns, origin, `${origin}/p/${name}`)])),
    }),
  };
}

/** Starts the stand-ins (and a demo website when given the worker URL) on one port; port 0 picks a free one. */
export async function startSandbox(options: SandboxOptions & { port?: number; host?: string } = {}): Promise<RunningSandbox> {
  const { app, describe } = createSandbox(options);
  const host = options.host ?? "127.0.0.1";
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: host }, () => resolve(s));
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new Error(`Port ${options.port} is taken: is another \`npm start\` running? (set SANDBOX_PORT to move it)`) : error),
    );
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${host}:${port}`;
  return {
    ...describe(url),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

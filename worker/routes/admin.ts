import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { bearerAuth } from "hono/bearer-auth";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import type { Config } from "../config";
import { DEFAULT_PORTAL, portalKeySchema } from "../domain/portal-key";
import type { Env } from "../env";
import { requirePortalConfig } from "../portal-config";
import { AppError } from "../errors";
import { jobSchema } from "../jobs/schema";
import { reconcileWindow } from "../jobs/scheduled";
import { backfillStep } from "../jobs/backfill-attribution";
import { deadLetterStore } from "../storage/d1";
import { bitrixClientFor, storesFor } from "../wiring";
import { adminTokensOrRefuse, isAdminToken, refuseLockedOut } from "./admin-auth";
import { adminPortalsRoute } from "./admin-portals";
import { limitBody } from "./body-limit";

/** One request reconciles at most a week; `npm run reconcile` walks longer ranges in steps. */
const MAX_RECONCILE_DAYS = 7;

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  pending: z.enum(["0", "1"]).default("0"),
  portal: portalKeySchema.optional(),
});

/** The portal an admin request is about: `?portal=<key>`, else the default one. */
async function portalConfigOf(c: Context<AppEnv>): Promise<Config> {
  const portal = portalKeySchema.parse(c.req.query("portal") ?? DEFAULT_PORTAL);
  return requirePortalConfig(c.env, portal);
}
const reconcileBody = z
  .object({ from: z.iso.datetime({ offset: true }), to: z.iso.datetime({ offset: true }) })
  .refine((w) => Date.parse(w.to) > Date.parse(w.from), { error: "must be after from", path: ["to"] })
  .refine((w) => Date.parse(w.to) - Date.parse(w.from) <= MAX_RECONCILE_DAYS * 86_400_000, { error: `the window may span at most ${MAX_RECONCILE_DAYS} days`, path: ["to"] });

function deadLettersOf(env: Env) {
  const store = env.DB ? deadLetterStore(env.DB) : null;
  if (!store) throw new AppError(503, "no_database", "The DB binding (D1) is missing, so dead letters are not recorded");
  return store;
}

/** Admin requests are small JSON; 16 KiB stops abuse before anything is read. */
export const ADMIN_MAX_BYTES = 16 * 1024;
const UNAUTHORIZED = { error: "unauthorized", message: "Missing or invalid bearer token" };

/** Operator routes, behind ADMIN_TOKEN and the lockout of guessers (admin-auth.ts). Off without it. */
export const adminRoute = new Hono<AppEnv>();

adminRoute.use("*", limitBody(ADMIN_MAX_BYTES));
adminRoute.use("*", async (c, next) => {
  // No portal's settings are needed: a deployment of stored portals alone has no default one.
  adminTokensOrRefuse(c);
  await refuseLockedOut(c);
  c.header("Cache-Control", "no-store");
  await next();
});
adminRoute.use(
  "*",
  bearerAuth({
    verifyToken: async (token, c: Context<AppEnv>) => isAdminToken(c, token, adminTokensOrRefuse(c)),
    noAuthenticationHeader: { message: UNAUTHORIZED },
    invalidAuthenticationHeader: { message: UNAUTHORIZED },
    invalidToken: { message: UNAUTHORIZED },
  }),
);

adminRoute.route("/portals", adminPortalsRoute);

adminRoute.get("/dead-letters", async (c) => {
  const query = listQuery.parse(c.req.query());
  const letters = await deadLettersOf(c.env).list({ limit: query.limit, pendingOnly: query.pending === "1", ...(query.portal ? { portal: query.portal } : {}) });
  return c.json({ deadLetters: letters });
});

adminRoute.post("/dead-letters/:id/replay", async (c) => {
  const store = deadLettersOf(c.env);
  const letter = await store.get(c.req.param("id"));
  if (!letter) throw new AppError(404, "not_found", "No dead letter with that id");
  const job = jobSchema.safeParse(letter.job);
  if (!job.success) throw new AppError(422, "unreadable_job", "This job is from a version the worker can no longer read; it cannot be replayed");
  // Lead writes have their own queue; the follow-ups (call record, enrichment) share the enrichment queue.
  const queue = job.data.type === "lead.ingest" ? c.env.LEAD_JOBS : c.env.ENRICH_JOBS;
  if (!queue) throw new AppError(503, "no_queue", "The queue for this job is not bound");
  await queue.send(job.data, { contentType: "json" });
  await store.markReplayed(letter.id, new Date());
  c.get("log").info("dead_letter.replayed", { id: letter.id, jobType: job.data.type, portal: job.data.portal });
  return c.json({ status: "replayed", id: letter.id, jobType: job.data.type, portal: job.data.portal }, 202);
});

/** Which events (session or form keys) were written to Bitrix24, and to which lead, per the ledger. */
adminRoute.post("/applied", async (c) => {
  const { ledger } = storesFor(c.env, (await portalConfigOf(c)).portal);
  if (!ledger) throw new AppError(503, "no_database", "The DB binding (D1) is missing, so the ledger is not kept");
  const { keys } = z.object({ keys: z.array(z.string().min(1).max(120)).max(1000) }).parse(await c.req.json().catch(() => null));
  return c.json({ applied: Object.fromEntries(await ledger.find(keys)) });
});

adminRoute.post("/reconcile", async (c) => {
  const config = await portalConfigOf(c);
  const window = reconcileBody.parse(await c.req.json().catch(() => null));
  const report = await reconcileWindow({ from: new Date(window.from), to: new Date(window.to) }, c.env, config, c.get("log"));
  if (!report) throw new AppError(409, "comagic_not_configured", "Set COMAGIC_API_TOKEN (or COMAGIC_LOGIN and COMAGIC_PASSWORD) to read the CoMagic feed");
  return c.json(report);
});

/** One step of `npm run backfill:attribution`: the next page of leads (or deals) created since `from`, queued for enrichment. */
adminRoute.post("/attribution/backfill", async (c) => {
  const config = await portalConfigOf(c);
  const body = z.object({ from: z.iso.date(), entity: z.enum(["lead", "deal"]).default("lead") }).parse(await c.req.json().catch(() => null));
  const { attribution } = storesFor(c.env, config.portal);
  if (!attribution || !c.env.ENRICH_JOBS) throw new AppError(503, "misconfigured", "The DB binding (D1) and the ENRICH_JOBS queue are needed to backfill attribution");
  const step = await backfillStep(body, { bitrix: bitrixClientFor(config, c.env), store: attribution, enrichQueue: c.env.ENRICH_JOBS, requestId: c.get("requestId"), portal: config.portal });
  c.get("log").info("attribution.backfill_step", { ...body, ...step });
  return c.json(step);
});

import type { Context } from "hono";
import { Hono } from "hono/tiny";
import type { AppEnv } from "./app-env";
import { SNIPPET_ETAG, SNIPPET_SOURCE } from "../../snippet/dist/bundle";
import { portalKeySchema } from "../domain/portal-key";
import { AppError } from "../errors";
import { configFor } from "../portal-config";

/** Five minutes: a fixed snippet reaches every site soon, and the ETag makes rechecks cheap. */
const MAX_AGE_SECONDS = 300;

/**
 * The snippet posts forms to `/forms` on the worker's origin; a portal's copy (`/s/<portal key>.js`) posts them to
 * `/forms/<portal key>`. The one `"/forms"` literal of the bundle is swapped, so the snippet spends no byte on it.
 */
const FORMS_LITERAL = '"/forms"';
if (SNIPPET_SOURCE.split(FORMS_LITERAL).length !== 2) throw new Error('snippet/dist/bundle.ts must hold the literal "/forms" exactly once');

function serve(c: Context<AppEnv>, source: string, etag: string): Response {
  c.header("Cache-Control", `public, max-age=${MAX_AGE_SECONDS}`);
  c.header("ETag", etag);
  const cached = c.req.header("if-none-match");
  if (cached?.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) return c.body(null, 304);
  c.header("Content-Type", "application/javascript; charset=utf-8");
  return c.body(source);
}

/** `/snippet.js`: the default portal's. */
export const snippetRoute = new Hono<AppEnv>().get("/", (c) => serve(c, SNIPPET_SOURCE, SNIPPET_ETAG));

/** `/s/<portal key>.js`: a portal's own, which sends its forms to that portal. */
export const portalSnippetRoute = new Hono<AppEnv>().get("/:file{[a-z0-9-]+\\.js}", async (c) => {
  const portal = portalKeySchema.safeParse(c.req.param("file").slice(0, -3));
  if (!portal.success || !(await configFor(c.env, portal.data))) throw new AppError(404, "unknown_portal", "No such portal");
  const source = SNIPPET_SOURCE.replace(FORMS_LITERAL, JSON.stringify(`/forms/${portal.data}`));
  return serve(c, source, `${SNIPPET_ETAG.slice(0, -1)}-${portal.data}"`);
});

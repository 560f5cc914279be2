import { Hono } from "hono/tiny";
import type { AppEnv } from "./app-env";
import { SNIPPET_ETAG, SNIPPET_SOURCE } from "../../snippet/dist/bundle";

/** Five minutes: a fixed snippet reaches every site soon, and the ETag makes rechecks cheap. */
const MAX_AGE_SECONDS = 300;

export const snippetRoute = new Hono<AppEnv>().get("/", (c) => {
  c.header("Cache-Control", `public, max-age=${MAX_AGE_SECONDS}`);
  c.header("ETag", SNIPPET_ETAG);
  const cached = c.req.header("if-none-match");
  if (cached?.split(",").some((tag) => tag.trim().replace(/^W\//, "") === SNIPPET_ETAG)) return c.body(null, 304);
  c.header("Content-Type", "application/javascript; charset=utf-8");
  return c.body(SNIPPET_SOURCE);
});

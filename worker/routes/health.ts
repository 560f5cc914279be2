import { Hono } from "hono";
import type { AppEnv } from "../app";
import { readConfig } from "../config";

/** 200 when the worker can do its core job; 503 naming what is missing. Never shows a value. */
export const healthRoute = new Hono<AppEnv>().get("/", (c) => {
  const result = readConfig(c.env);
  c.header("Cache-Control", "no-store");
  if (!result.ok) return c.json({ status: "unavailable", problems: result.problems, warnings: result.warnings }, 503);
  return c.json({ status: "ok", problems: [], warnings: result.warnings }, 200);
});

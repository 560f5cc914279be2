import { createSandbox, type SandboxPortal } from "../../sandbox/server";

/**
 * The sandboxes called in-process (`app.request`), as if served at `origin`: unit tests have no network
 * (test/helpers/no-network.ts). `portal("root")` is the root portal; any other name one under `/p/<name>`.
 */
export function sandboxInProcess(portals: string[], origin = "http://localhost") {
  const { app, describe } = createSandbox({ portals });
  const view = describe(origin);
  const json = async (path: string, body?: unknown) => {
    const res = await app.request(path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: unknown; result?: unknown } };
  };
  const portal = (name: string): SandboxPortal => {
    const found = name === "root" ? view : view.portals[name];
    if (!found) throw new Error(`no portal ${name}`);
    return found;
  };
  return { app, view, json, portal };
}

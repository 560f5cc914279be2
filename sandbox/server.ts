import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { createBitrixSandbox, type BitrixSandboxOptions } from "./bitrix/app";
import { createCallApiSandbox } from "./comagic/call-api";
import { createDataApiSandbox, type DataApiSettings } from "./comagic/data-api";
import { createDemoSite } from "./demo";

export interface RunningSandbox {
  url: string;
  bitrixWebhookUrl: string;
  dataApiUrl: string;
  callApiUrl: string;
  bitrix: ReturnType<typeof createBitrixSandbox>;
  close(): Promise<void>;
}

/** Starts the local stand-ins (Bitrix24, CoMagic, and a demo website when given the worker URL) on one port; port 0 picks a free one. */
export async function startSandbox(options: { port?: number; host?: string; bitrix?: BitrixSandboxOptions; comagic?: Partial<DataApiSettings>; demoWorkerUrl?: string } = {}): Promise<RunningSandbox> {
  const bitrix = createBitrixSandbox(options.bitrix);
  const app = new Hono();
  const dataApi = createDataApiSandbox();
  if (options.comagic) dataApi.setSettings(options.comagic);
  app.route("/", bitrix.app);
  app.route("/", dataApi.app);
  app.route("/", createCallApiSandbox(dataApi.credentials, dataApi.recordCall).app);
  if (options.demoWorkerUrl) app.route("/", createDemoSite(options.demoWorkerUrl));
  app.get("/", (c) => c.redirect("/_sandbox"));
  app.get("/favicon.ico", (c) => c.body(null, 204));
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
    url,
    bitrixWebhookUrl: `${url}${bitrix.webhookPath}`,
    dataApiUrl: `${url}/comagic/dataapi/v2.0`,
    callApiUrl: `${url}/comagic/callapi/v4.0`,
    bitrix,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

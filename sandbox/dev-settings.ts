/** What `npm start` wires together; `npm run send:call` and the demo pages use the same values. */
export const DEV = {
  workerPort: Number(process.env.WORKER_PORT ?? 8787),
  sandboxPort: Number(process.env.SANDBOX_PORT ?? 8790),
  webhookToken: "dev-token",
  webhookSecret: "dev-secret",
  // 32+ characters: the worker refuses a shorter admin token.
  adminToken: "dev-admin-token-0123456789abcdef0123",
  comagicLogin: "sandbox",
  comagicPassword: "sandbox-password",
};
export const workerUrl = `http://127.0.0.1:${DEV.workerPort}`;
export const sandboxUrl = `http://127.0.0.1:${DEV.sandboxPort}`;

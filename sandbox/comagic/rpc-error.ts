/** A JSON-RPC error as CoMagic sends it: code, message, and data.mnemonic (the part to branch on). */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    readonly mnemonic: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

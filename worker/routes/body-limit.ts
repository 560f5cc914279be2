import { bodyLimit } from "hono/body-limit";
import { AppError } from "../errors";

/** Refuses bodies over `maxBytes` with 413 before reading them whole (Content-Length or streamed). */
export function limitBody(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new AppError(413, "body_too_large", `The body is larger than ${maxBytes} bytes`);
    },
  });
}

import { describe, expect, it } from "vitest";
import { classifyBitrixError } from "../../worker/bitrix/errors";
import { checkRecordingLink } from "../../worker/comagic/recording-link";

/*
 * What the worker asks a recording link before Bitrix24 downloads it (attachRecord downloads inside the request,
 * once, and keeps whatever comes: bitrix24/FACTS-portals.md §7), and how telephony's "User is not found or is not
 * active" (FACTS.md §2.9) is classified.
 */

type Reply = { status: number; type?: string } | Error;

/** A fetch that plays back one reply per request and records the method and Range header of each. */
function host(...replies: Reply[]) {
  const asked: string[] = [];
  const fetchStub = async (_url: string | URL | Request, init?: RequestInit) => {
    const range = new Headers(init?.headers).get("range");
    asked.push(`${init?.method ?? "GET"}${range ? ` ${range}` : ""}`);
    const reply = replies.shift();
    if (!reply) throw new Error("no more scripted replies");
    if (reply instanceof Error) throw reply;
    return new Response(init?.method === "HEAD" ? null : "x", { status: reply.status, headers: reply.type ? { "content-type": reply.type } : {} });
  };
  return { fetch: fetchStub as typeof fetch, asked };
}

const LINK = "https://media.comagic.ru/42/full.mp3";
const timeout = () => Object.assign(new Error("The operation timed out."), { name: "TimeoutError" });

describe("checkRecordingLink", () => {
  it.each([
    ["audio/mpeg from HEAD", "audio", [{ status: 200, type: "audio/mpeg" }], ["HEAD"]],
    ["a generic download type (application/octet-stream)", "audio", [{ status: 200, type: "application/octet-stream" }], ["HEAD"]],
    ["a sign-in page (text/html after the redirect)", "not-audio", [{ status: 200, type: "text/html; charset=utf-8" }], ["HEAD"]],
    ["HEAD refused (405), a ranged GET answers 206 audio", "audio", [{ status: 405 }, { status: 206, type: "audio/mpeg" }], ["HEAD", "GET bytes=0-0"]],
    ["a link signed for GET only (403 to HEAD), GET answers audio", "audio", [{ status: 403 }, { status: 200, type: "audio/mpeg" }], ["HEAD", "GET bytes=0-0"]],
    ["a link that is gone (404 to both)", "not-audio", [{ status: 404 }, { status: 404 }], ["HEAD", "GET bytes=0-0"]],
    ["a failing host (503 to both)", "retry", [{ status: 503 }, { status: 503 }], ["HEAD", "GET bytes=0-0"]],
    ["a host that sends no headers in time", "retry", [timeout()], ["HEAD"]],
    ["a host the worker cannot reach at all (Bitrix24's network may)", "unreachable", [new TypeError("internal error")], ["HEAD"]],
  ] as const)("%s: the verdict is %s", async (_what, verdict, replies, asked) => {
    const stub = host(...(replies as readonly Reply[]));
    expect((await checkRecordingLink(LINK, { fetch: stub.fetch })).verdict).toBe(verdict);
    expect(stub.asked).toEqual(asked);
  });

  it("names the content type of what is not audio, for the log line", async () => {
    const check = await checkRecordingLink(LINK, host({ status: 200, type: "text/html" }));
    expect(check).toEqual({ verdict: "not-audio", reason: "answers text/html, not audio (a login page?)" });
  });

  it("asks nothing of a link that is not http(s)", async () => {
    const stub = host();
    expect((await checkRecordingLink("ftp://media.comagic.ru/42/full.mp3", { fetch: stub.fetch })).verdict).toBe("not-audio");
    expect((await checkRecordingLink("not a link", { fetch: stub.fetch })).verdict).toBe("not-audio");
    expect(stub.asked).toEqual([]);
  });
});

describe("telephony's refusal of a dismissed user", () => {
  it.each([
    ["ERROR_CORE", "telephony.externalCall.register: User is not found or is not active"],
    ["", "User is not found or is not active"],
  ])("with error code %j, is permanent, not a 'not found' to retry, and says what to change", (code, description) => {
    const error = classifyBitrixError(code, description, 400);
    expect(error).toMatchObject({ code: "USER_NOT_ACTIVE", transient: false });
    expect(error.message).toContain("COMAGIC_EMPLOYEES");
  });

  it("leaves a call that is not found (a second finish) transient, as before", () => {
    expect(classifyBitrixError("ERROR_CORE", "telephony.externalCall.finish: Call is not found", 400)).toMatchObject({ code: "ERROR_CORE", transient: true });
  });
});

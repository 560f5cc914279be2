import { stringify } from "qs";
import { RestError } from "./portal";

/*
 * An application's event handlers on one portal, as Bitrix24 keeps them (rest module, api/event.php and event.php):
 * `event.bind` / `event.get` / `event.unbind` in application context only (a webhook gets WRONG_AUTH_TYPE), a
 * non-administrator binding and seeing only handlers under their own user id, the handler URL checked as
 * HandlerHelper::checkCallback does, a second identical binding refused. Events reach a handler as a form POST with
 * PHP-style keys (`event`, `data[…]`, `ts`, `auth[…]`: samples/event.ONAPPINSTALL.payload.json). Offline events are not
 * modelled.
 */

/** Sends one event request; the default POSTs over HTTP, a unit test passes its own (it has no network). */
export type EventDelivery = (request: Request) => Promise<Response>;

export interface EventBinding {
  event: string;
  handler: string;
  /** The user the handler is authorized as; 0: whoever caused the event. */
  authType: number;
  /** Which application bound it: ours, or another app installed on the same portal. */
  app: string;
}

/** What one event POST came to: the handler's HTTP status, 0 and why when it did not answer, null when not sent. */
export interface Delivery {
  handler: string;
  status: number | null;
  error?: string;
  /** The form as sent (a test in workerd, which the sandbox cannot reach, posts it to the worker itself). */
  body: string;
}

/** Events the sandbox lets an app bind: the rest module's own and the CRM and telephony ones the worker could use. */
const KNOWN_EVENTS = new Set([
  "ONAPPINSTALL",
  "ONAPPUNINSTALL",
  "ONAPPUPDATE",
  "ONAPPPAYMENT",
  "ONAPPTEST",
  ...["LEAD", "DEAL", "CONTACT", "COMPANY"].flatMap((entity) => ["ADD", "UPDATE", "DELETE"].map((verb) => `ONCRM${entity}${verb}`)),
  "ONEXTERNALCALLSTART",
  "ONEXTERNALCALLBACKSTART",
]);

const DELIVERY_TIMEOUT_MS = 5_000;

const httpDelivery: EventDelivery = (request) => fetch(request, { redirect: "manual", signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });

/** HandlerHelper::checkCallback: a host with a dot in it, then http or https; the sandbox also takes loopback hosts. */
function checkHandler(handler: string): void {
  let url: URL | null = null;
  try {
    url = new URL(handler);
  } catch {
    url = null;
  }
  const host = url?.hostname ?? "";
  if (!url || !(host.indexOf(".") > 0 || host === "localhost")) throw new RestError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL");
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RestError(400, "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol");
}

export function createAppEvents() {
  const bindings: EventBinding[] = [];
  let deliver: EventDelivery = httpDelivery;

  /**
   * event.bind / event.get / event.unbind for `user` calling as `app`, or null for any other method. Parameter names
   * are case-insensitive, as Bitrix24 upper-cases them.
   */
  function method(name: string, rawParams: Record<string, unknown>, user: { id: number; admin: boolean } | null, app: string): { result: unknown } | null {
    if (name !== "event.bind" && name !== "event.get" && name !== "event.unbind") return null;
    if (user === null) throw new RestError(403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method");
    const params = Object.fromEntries(Object.entries(rawParams).map(([k, v]) => [k.toUpperCase(), v]));
    const text = (key: string) => (typeof params[key] === "string" || typeof params[key] === "number" ? String(params[key]) : "");
    const mine = (b: EventBinding) => b.app === app && (user.admin || b.authType === user.id);
    if (name === "event.get") {
      return { result: bindings.filter(mine).map((b) => ({ event: b.event, handler: b.handler, auth_type: String(b.authType), offline: 0 })) };
    }
    const event = text("EVENT").toUpperCase();
    const handler = text("HANDLER");
    const eventType = text("EVENT_TYPE").toLowerCase();
    if (event === "") throw new RestError(400, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty");
    if (eventType !== "" && eventType !== "online") throw new RestError(400, "ERROR_ARGUMENT", "The sandbox models online events only (EVENT_TYPE=online)");
    if (handler === "") throw new RestError(400, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty");
    const authType = params.AUTH_TYPE === undefined || params.AUTH_TYPE === "" ? null : Number(params.AUTH_TYPE) || 0;
    if (name === "event.unbind") {
      if (authType !== null && !user.admin && authType !== user.id) throw new RestError(403, "ACCESS_DENIED", "Event unbinding with AUTH_TYPE requires administrator access rights");
      const owner = authType ?? (user.admin ? null : user.id);
      const gone = bindings.filter((b) => b.app === app && b.event === event && b.handler === handler && (owner === null || b.authType === owner));
      for (const binding of gone) bindings.splice(bindings.indexOf(binding), 1);
      return { result: { count: gone.length } };
    }
    if (authType !== null && authType > 0 && !user.admin && authType !== user.id) {
      throw new RestError(403, "ACCESS_DENIED", "Event binding with AUTH_TYPE requires administrator access rights");
    }
    const owner = authType !== null && authType > 0 ? authType : user.admin ? 0 : user.id;
    checkHandler(handler);
    if (!KNOWN_EVENTS.has(event)) throw new RestError(400, "ERROR_EVENT_NOT_FOUND", "Event not found");
    if (bindings.some((b) => b.app === app && b.event === event && b.handler === handler && b.authType === owner)) {
      throw new RestError(400, "ERROR_CORE", "Unable to set event handler: Handler already binded");
    }
    bindings.push({ event, handler, authType: owner, app });
    return { result: true };
  }

  /**
   * POSTs `event` to every handler `app` bound to it, one after another; a handler that fails is reported, not
   * retried. With `post` false the forms are only built.
   */
  async function send(app: string, event: string, data: Record<string, unknown>, auth: Record<string, unknown>, post = true): Promise<Delivery[]> {
    const delivered: Delivery[] = [];
    for (const binding of bindings.filter((b) => b.app === app && b.event === event)) {
      const body = stringify({ event, data, ts: String(Math.floor(Date.now() / 1000)), auth });
      if (!post) {
        delivered.push({ handler: binding.handler, status: null, body });
        continue;
      }
      const request = new Request(binding.handler, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
      try {
        const response = await deliver(request);
        await response.body?.cancel();
        delivered.push({ handler: binding.handler, status: response.status, body });
      } catch (error) {
        delivered.push({ handler: binding.handler, status: 0, error: error instanceof Error ? error.message : String(error), body });
      }
    }
    return delivered;
  }

  /** Bitrix24 deletes an app's handlers with the app (EventTable::deleteByApp). */
  function removeApp(app: string): void {
    for (let i = bindings.length - 1; i >= 0; i -= 1) if (bindings[i]?.app === app) bindings.splice(i, 1);
  }

  return {
    method,
    send,
    removeApp,
    bindings: () => bindings.map((b) => ({ ...b })),
    setDelivery: (next: EventDelivery) => {
      deliver = next;
    },
  };
}

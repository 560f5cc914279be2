/*
 * The lead-capture snippet: `<script src="https://<worker>/snippet.js" data-forms="form" async></script>`.
 * It stamps every matching form with the CoMagic visitor id and first/last-touch UTMs when submitted,
 * and can also deliver the form to the worker. Everything runs inside try/catch: the host page never
 * sees an error from it, and a submit is never delayed or cancelled.
 */
type Fields = Record<string, string | undefined>;
interface CoMagicApi {
  getVisitorId?(): unknown;
  getSessionId?(): unknown;
  getCredentials?(): { visitor_id?: unknown; session_id?: unknown };
}
type Host = Window & { Comagic?: CoMagicApi; ComagicLeads?: { send(data: Fields): void } };

const w = window as Host;
const d = document;
try {
  const script = d.currentScript as HTMLScriptElement;
  const options = script.dataset;
  const endpoint = (options.endpoint || new URL(script.src).origin) + "/forms";
  const UTM = ["source", "medium", "campaign", "content", "term"];
  // One id for this page view: with the form's content it makes the worker's idempotency key,
  // so a double click or a repeated submit of the same form is one lead.
  const pageView = Math.random().toString(36).slice(2);
  const now = Date.now();
  const cookie = (name: string) => (d.cookie.match("(?:^|; )" + name + "=([^;]*)") || [])[1];

  // {f: first touch, l: last touch}. Storage may throw (private mode): then the current page is the only touch.
  let saved: { f?: Fields; l?: Fields } = {};
  try {
    saved = JSON.parse(localStorage.cm_touch);
  } catch (e) {}
  const touch: Fields = { at: "" + now };
  let tagged;
  const query = new URLSearchParams(location.search);
  for (const key of UTM.map((u) => "utm_" + u).concat("gclid", "yclid")) {
    const value = query.get(key);
    if (value) tagged = touch[key] = value;
  }
  if (tagged) {
    // The first touch is kept for 90 days, as long as CoMagic keeps its visitor cookie.
    if (!saved.f || now - +(saved.f.at as string) > 7776e6) saved.f = touch;
    saved.l = touch;
    try {
      localStorage.cm_touch = JSON.stringify(saved);
    } catch (e) {}
  }
  const first = saved.f || touch;
  const last = saved.l || touch;

  let visitor: unknown;
  let session: unknown;
  const readCoMagic = () => {
    try {
      const api = w.Comagic;
      const credentials = api?.getCredentials?.();
      visitor = api?.getVisitorId?.() || credentials?.visitor_id || visitor;
      session = api?.getSessionId?.() || credentials?.session_id || session;
    } catch (e) {}
  };
  // CoMagic's own script loads asynchronously: look for it for up to 10 s, never at submit time.
  let tries = 0;
  const poll = setInterval(() => {
    readCoMagic();
    if (visitor || ++tries > 40) clearInterval(poll);
  }, 250);

  const attribution = (): Fields => {
    readCoMagic();
    const fields: Fields = {
      comagic_visitor_id: (visitor || cookie("comagic_visitor")) as string,
      comagic_session_id: session as string,
      page_url: location.href,
      referrer: d.referrer,
      gclid: last.gclid,
      yclid: last.yclid,
      ga_client_id: cookie("_ga")?.split(".").slice(2).join("."),
      ym_uid: cookie("_ym_uid"),
    };
    for (const u of UTM) {
      fields["utm_" + u] = last["utm_" + u];
      fields["first_utm_" + u] = first["utm_" + u];
    }
    return fields;
  };

  // A beacon outlives the page a form navigates away from, and its text/plain body needs no CORS preflight.
  const deliver = (payload: Fields) => navigator.sendBeacon(endpoint, JSON.stringify({ ...payload, submission_id: pageView }));

  d.addEventListener(
    "submit",
    (event) => {
      try {
        const form = event.target as HTMLFormElement;
        if (!form.matches(options.forms || "form")) return;
        const fields = attribution();
        for (const name in fields) {
          let input = form.elements.namedItem(name) as HTMLInputElement | null;
          if (!input) {
            input = d.createElement("input");
            input.type = "hidden";
            input.name = name;
            form.appendChild(input);
          }
          input.value ||= fields[name] || "";
        }
        if (options.send != null || form.hasAttribute("data-comagic-send")) {
          const payload: Fields = { form_name: form.getAttribute("name") || form.id };
          new FormData(form).forEach((value, key) => {
            if (typeof value == "string" && !/pass/i.test(key)) payload[key] = value;
          });
          deliver(payload);
        }
      } catch (e) {}
    },
    true,
  );

  w.ComagicLeads = {
    send: (data) => {
      try {
        deliver({ ...attribution(), ...data });
      } catch (e) {}
    },
  };
} catch (e) {}

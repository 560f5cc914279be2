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
  // What a touch keeps: the UTMs and the ad click ids, last and first.
  const TAGS = "utm_source utm_medium utm_campaign utm_content utm_term gclid yclid".split(" ");
  // One id for this page view: with the form's content it makes the worker's idempotency key,
  // so a double click or a repeated submit of the same form is one lead.
  const pageView = "" + Math.random();
  const now = Date.now();
  const cookie = (name: string) => d.cookie.match("(^| )" + name + "=([^;]*)")?.[2];
  // Only attribution survives in a page or referrer URL: never a session id or a reset link's token.
  // Drops the fragment and every other parameter, then makes the first one left start the query again.
  const clean = (href: string) => href.replace(/#.*|[?&](?!utm_|(g|y|ym)clid=|_openstat=)[^&#]*/g, "").replace(/^([^?]*)&/, "$1?");

  // {f: first touch, l: last touch}. Storage may throw (private mode): then the current page is the only touch.
  let saved: { f?: Fields; l?: Fields } = {};
  try {
    saved = JSON.parse(localStorage.cm_touch);
  } catch {}
  const touch = { at: now } as unknown as Fields;
  let tagged: string | undefined;
  const query = new URLSearchParams(location.search);
  for (const key of TAGS) {
    const value = query.get(key);
    if (value) tagged = touch[key] = value;
  }
  if (tagged) {
    // The first touch is kept for 90 days, as long as CoMagic keeps its visitor cookie.
    if (!saved.f || now - (saved.f.at as unknown as number) > 7776e6) saved.f = touch;
    saved.l = touch;
    try {
      localStorage.cm_touch = JSON.stringify(saved);
    } catch {}
  }
  const first = saved.f || touch;
  const last = saved.l || touch;

  const attribution = (): Fields => {
    // CoMagic's own script loads asynchronously: it is asked at each submit, by which time it has loaded.
    let visitor: unknown, session: unknown;
    try {
      const api = w.Comagic;
      const credentials = api?.getCredentials?.();
      visitor = api?.getVisitorId?.() || credentials?.visitor_id;
      session = api?.getSessionId?.() || credentials?.session_id;
    } catch {}
    const fields: Fields = {
      comagic_visitor_id: (visitor || cookie("comagic_visitor")) as string,
      comagic_session_id: session as string,
      page_url: clean(location.href),
      referrer: clean(d.referrer),
      // The worker takes the client id out of the cookie's GA1.2.<client id>.
      ga_client_id: cookie("_ga"),
      ym_uid: cookie("_ym_uid"),
    };
    for (const tag of TAGS) {
      fields[tag] = last[tag];
      fields["first_" + tag] = first[tag];
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
          // A form's named properties are its controls ([LegacyOverrideBuiltIns]), and shorter than elements.namedItem.
          let input = (form as unknown as Record<string, HTMLInputElement | undefined>)[name];
          if (!input) {
            input = d.createElement("input");
            input.type = "hidden";
            input.name = name;
            form.appendChild(input);
          }
          input.value ||= fields[name] || "";
        }
        if ((options.send ?? form.dataset.comagicSend) != null) {
          const payload: Fields = { form_name: form.getAttribute("name") || form.id };
          // Never a secret: files (not strings), password inputs, card and one-time-code autocomplete, names that
          // say so (one test over "type,autocomplete,name"); hidden inputs only when they are the snippet's own
          // fields or the site allows them by name: <form data-comagic-hidden="order_id product">. (A beacon
          // never follows _redirect, so it is not sent.)
          new FormData(form).forEach((value, key) => {
            const input = (form as unknown as Record<string, HTMLInputElement>)[key] as HTMLInputElement;
            if (
              // Text, never a File.
              value === "" + value &&
              !/(\b|_)(pass|cc-|one-t|card|cv[vc]|iban|token|csrf|otp|pin|secret)/i.test([input.type, input.autocomplete, key] + "") &&
              (input.type != "hidden" || key in fields || form.dataset.comagicHidden?.split(" ").includes(key))
            )
              payload[key] = value;
          });
          deliver(payload);
        }
      } catch {}
    },
    true,
  );

  w.ComagicLeads = {
    send: (data) => {
      try {
        deliver({ ...attribution(), ...data });
      } catch {}
    },
  };
} catch {}

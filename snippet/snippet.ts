/*
 * The lead-capture snippet: `<script src="https://<worker>/snippet.js" data-forms="form" async></script>`.
 * It stamps every matching form with the CoMagic visitor id and first/last-touch UTMs when submitted,
 * and can also deliver the form to the worker. Everything runs inside try/catch: the host page never
 * sees an error from it, and a submit is never delayed or cancelled.
 */
import { SECRET_FIELD_NAME } from "../worker/domain/secret-fields";

type Fields = Record<string, string | undefined>;
type Credentials = { visitor_id?: unknown; session_id?: unknown };
interface CoMagicApi {
  getVisitorId?(): unknown;
  getSessionId?(): unknown;
  getCredentials?(): Credentials;
}
type Host = Window & { ComagicLeads?: { send(data: Fields): void } };
// CoMagic's global; reading it before CoMagic's script has defined it throws, into a catch.
declare const Comagic: CoMagicApi;

const d = document;
try {
  const script = d.currentScript as HTMLScriptElement;
  const options = script.dataset;
  // data-endpoint is the worker's origin; a path in it is not kept (the worker serves /forms at its root).
  const endpoint = new URL("/forms", options.endpoint || script.src);
  // What a touch keeps: the UTMs and the ad click ids, last and first.
  const TAGS = "utm_source utm_medium utm_campaign utm_content utm_term gclid yclid".split(" ");
  // Also this page view's id (its load time, to the millisecond): with the form's content it makes the worker's
  // idempotency key, so a double click or a repeated submit of the same form is one lead. Two page views loaded
  // in the same millisecond collide only with the same content, which is one lead anyway (plain forms share a
  // 10-minute window).
  const now = Date.now();
  const cookie = (name: string) => d.cookie.match("(^| )" + name + "=([^;]*)")?.[2];
  // Only attribution survives in a page or referrer URL: never a session id or a reset link's token.
  // Drops the fragment and every other parameter, then makes the first one left start the query again.
  const clean = (href: string) => href.replace(/#.*|[?&](?!utm_|(g|ym?)clid=|_openstat=)[^&#]*/g, "").replace(/^([^?]*)&/, "$1?");

  // {f: first touch, l: last touch}. Storage may throw (private mode): then the current page is the only touch.
  let saved: { f?: Fields; l?: Fields } = {};
  try {
    saved = JSON.parse(localStorage.cm_touch);
  } catch {}
  const touch = { at: now } as unknown as Fields;
  let tagged: string | undefined;
  const query = new URLSearchParams(location.search);
  // An absent tag is kept as null: the worker ignores nulls, and the stamp writes "".
  for (const key of TAGS) {
    touch[key] = query.get(key) as string;
    tagged ||= touch[key];
  }
  if (tagged) {
    // The first touch is kept for 90 days, as long as CoMagic keeps its visitor cookie.
    if (!saved.f || now - (saved.f.at as unknown as number) > 7776e6) saved.f = touch;
    saved.l = touch;
    try {
      localStorage.cm_touch = JSON.stringify(saved);
    } catch {}
  }

  const attribution = (): Fields => {
    // CoMagic's own script loads asynchronously: it is asked at each submit, by which time it has loaded.
    // Where it is missing (no Comagic, no credentials), reading it throws into the catch: then the cookie.
    let visitor: unknown, session: unknown;
    try {
      const api = Comagic;
      const credentials = api.getCredentials?.() as Credentials;
      visitor = api.getVisitorId?.() || credentials.visitor_id;
      session = api.getSessionId?.() || credentials.session_id;
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
      fields[tag] = (saved.l || touch)[tag];
      fields["first_" + tag] = (saved.f || touch)[tag];
    }
    return fields;
  };

  // A beacon outlives the page a form navigates away from, and its text/plain body needs no CORS preflight.
  const deliver = (payload: Fields) => navigator.sendBeacon(endpoint, JSON.stringify({ ...payload, submission_id: now }));

  d.addEventListener(
    "submit",
    (event) => {
      try {
        const form = event.target as HTMLFormElement;
        if (form.matches(options.forms || "form")) {
          const fields = attribution();
          for (const name in fields) {
            // A form's named properties are its controls ([LegacyOverrideBuiltIns]), and shorter than elements.namedItem.
            let input = (form as unknown as Record<string, HTMLInputElement | undefined>)[name];
            if (!input) {
              input = d.createElement("input");
              input.type = "hidden";
              input.name = name;
              form.append(input);
            }
            input.value ||= fields[name] || "";
          }
          if ((options.send ?? form.dataset.comagicSend) != null) {
            const payload = Object.fromEntries(new FormData(form)) as Fields;
            // Then each control judges its own name, so one secret or unlisted hidden control drops the name even
            // when others share it (form[name] is then a RadioNodeList, which has no type). Never sent: files,
            // passwords, card and one-time-code autocomplete, names that say secret (the worker's rule, bundled
            // in; tested on "type,autocomplete,name"); hidden inputs other than the snippet's fields, form_name,
            // and those the site lists by name: <form data-comagic-hidden="order_id product">. (A beacon never
            // follows _redirect, so it is not sent.)
            for (const input of form.elements as unknown as HTMLInputElement[])
              if (
                // Only a file input has files.
                input.files ||
                SECRET_FIELD_NAME.test([input.type, input.autocomplete, input.name] as unknown as string) ||
                (input.type == "hidden" && !(input.name in fields || ("form_name " + form.dataset.comagicHidden).split(" ").includes(input.name)))
              )
                delete payload[input.name];
            payload.form_name ||= form.getAttribute("name") || form.id;
            deliver(payload);
          }
        }
      } catch {}
    },
    true,
  );

  (window as Host).ComagicLeads = {
    send: (data) => {
      try {
        deliver({ ...attribution(), ...data });
      } catch {}
    },
  };
} catch {}

import type { FC } from "hono/jsx";
import { attribute, channelOf, MODEL_LABELS, MODELS, type Touch } from "../domain/attribution";
import type { SessionTouch, Touchpoint } from "../domain/touchpoints";
import type { JourneyState, TabView } from "../bitrix/app-service";
import { formatComagicDateTime } from "../domain/comagic-time";

const STYLE = `
body{font:13px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333;margin:0;padding:16px 20px;background:#fff}
h2{font-size:15px;margin:18px 0 8px}h2:first-child{margin-top:0}
.note{background:#f5f7f8;border-left:3px solid #2fc6f6;padding:10px 12px;margin:8px 0}
.note.warn{border-color:#ffa900}.note code{font-size:12px;word-break:break-all}
ol.journey{list-style:none;margin:0;padding:0;border-left:2px solid #dfe3e6}
ol.journey li{margin:0 0 10px 0;padding-left:14px;position:relative}
ol.journey li:before{content:"";position:absolute;left:-6px;top:5px;width:10px;height:10px;border-radius:50%;background:#2fc6f6}
ol.journey li.contact:before{background:#9dcf00}
.when{color:#80868e;font-size:12px}.channel{font-weight:bold}.meta{color:#525c69;font-size:12px;word-break:break-all}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eef2f4;padding:5px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
th{color:#525c69;font-weight:normal;font-size:12px}
.call{display:flex;gap:10px;align-items:center;margin-bottom:14px}
button{background:#3bc8f5;border:0;border-radius:2px;color:#fff;font:bold 13px Arial;padding:8px 18px;cursor:pointer}button:disabled{background:#b9c0c6;cursor:default}
#call-result.ok{color:#5b8c00}#call-result.error{color:#d0021b}`;

const CONTACT_LABELS: Record<string, string> = { call: "Call", chat: "Chat", offline_message: "Form", goal: "Goal" };

const Session: FC<{ session: SessionTouch; timeZone: string }> = ({ session, timeZone }) => {
  const utm = Object.entries(session.utm).filter(([, v]) => v);
  return (
    <li class="session">
      <div class="when">{formatComagicDateTime(new Date(session.at), timeZone)}</div>
      <div>
        Visit · <span class="channel">{channelOf(session)}</span>
      </div>
      {utm.length > 0 && <div class="meta">{utm.map(([k, v]) => `utm_${k}=${v}`).join("  ")}</div>}
      {session.referrer && <div class="meta">from {session.referrer}</div>}
      {session.entrancePage && <div class="meta">entered at {session.entrancePage}</div>}
    </li>
  );
};

const Timeline: FC<{ touchpoints: Touchpoint[]; timeZone: string }> = ({ touchpoints, timeZone }) => (
  <ol class="journey">
    {touchpoints.map((t) =>
      t.type === "session" ? (
        <Session session={t} timeZone={timeZone} />
      ) : (
        <li class="contact">
          <div class="when">{formatComagicDateTime(new Date(t.at), timeZone)}</div>
          <div>
            <span class="channel">{CONTACT_LABELS[t.type] ?? t.type}</span> · CoMagic id {t.id}
          </div>
        </li>
      ),
    )}
  </ol>
);

const percent = (share: number | undefined) => `${Math.round((share ?? 0) * 100)}%`;

const Attribution: FC<{ sessions: SessionTouch[]; conversionAt: number }> = ({ sessions, conversionAt }) => {
  const touches: Touch[] = sessions.map((s) => ({ channel: channelOf(s), at: Date.parse(s.at) }));
  const credits = MODELS.map((model) => attribute(model, touches, conversionAt));
  const channels = [...new Set(touches.map((t) => t.channel))];
  return (
    <table id="attribution">
      <thead>
        <tr>
          <th>Channel</th>
          {MODELS.map((m) => (
            <th>{MODEL_LABELS[m]}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {channels.map((channel) => (
          <tr>
            <td>{channel}</td>
            {credits.map((credit) => (
              <td>{percent(credit[channel])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
};

const EmptyState: FC<{ state: Exclude<JourneyState, { kind: "ready" }>; snippetUrl: string }> = ({ state, snippetUrl }) => {
  if (state.kind === "no_visitor") {
    return (
      <div class="note" id="empty">
        This lead has no CoMagic visitor id, so there is no journey to show. Leads get one from calls and chats CoMagic tracked on the site, and from
        website forms once the site carries the snippet: <code>{`<script src="${snippetUrl}" data-forms="form" async></script>`}</code>
      </div>
    );
  }
  return (
    <div class={`note${state.kind === "unreachable" ? " warn" : ""}`} id="empty">
      {state.kind === "unreachable" ? "CoMagic cannot be reached right now, so the journey is not shown. " : "The touchpoints are not loaded yet. "}
      {state.reason}
    </div>
  );
};

const CALL_SCRIPT = `
document.getElementById("call")?.addEventListener("click", async (event) => {
  const button = event.currentTarget, out = document.getElementById("call-result");
  button.disabled = true; out.className = ""; out.textContent = "Calling your phone…";
  try {
    const res = await fetch(button.dataset.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: button.dataset.token }) });
    const body = await res.json();
    out.className = res.ok ? "ok" : "error";
    out.textContent = res.ok ? "Your phone is ringing; the client is called when you answer." : body.message || "The call could not be started.";
    if (!res.ok && res.status !== 409) button.disabled = false;
  } catch (e) { out.className = "error"; out.textContent = "The worker could not be reached."; button.disabled = false; }
});`;

export const TabPage: FC<{ view: TabView; token: string; callUrl: string; snippetUrl: string; timeZone: string; canCall: boolean }> = ({ view, token, callUrl, snippetUrl, timeZone, canCall }) => {
  const { journeyState } = view;
  const sessions = journeyState.kind === "ready" ? journeyState.journey.touchpoints.filter((t): t is SessionTouch => t.type === "session") : [];
  const conversionAt = Date.parse(view.lead.DATE_CREATE ?? "") || Date.now();
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>CoMagic</title>
        <style dangerouslySetInnerHTML={{ __html: STYLE }} />
      </head>
      <body>
        <div class="call">
          <button id="call" type="button" data-token={token} data-url={callUrl} disabled={!canCall || !view.hasPhone}>
            Call
          </button>
          <span id="call-result">{!view.hasPhone ? "This lead has no phone number." : !canCall ? "Click-to-call is not configured on the worker." : ""}</span>
        </div>
        <h2>
          Journey <span class="when">· times in {timeZone}</span>
        </h2>
        {journeyState.kind === "ready" ? <Timeline touchpoints={journeyState.journey.touchpoints} timeZone={timeZone} /> : <EmptyState state={journeyState} snippetUrl={snippetUrl} />}
        {sessions.length > 0 && (
          <>
            <h2>Attribution</h2>
            <p class="meta">How each model credits this lead to the channels of the visitor's visits. "direct" is a visit with no UTM tags, no referrer and no other channel from CoMagic.</p>
            <Attribution sessions={sessions} conversionAt={conversionAt} />
          </>
        )}
        <script dangerouslySetInnerHTML={{ __html: CALL_SCRIPT }} />
      </body>
    </html>
  );
};

export const MessagePage: FC<{ title: string; message: string }> = ({ title, message }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <title>{title}</title>
      <style dangerouslySetInnerHTML={{ __html: STYLE }} />
    </head>
    <body>
      <div class="note warn">
        <strong>{title}.</strong> {message}
      </div>
    </body>
  </html>
);

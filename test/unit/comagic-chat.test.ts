import { EMPTY_SESSION } from "../fixtures/comagic-session";
import { callEvent } from "../fixtures/lead-event";
import { describe, expect, it } from "vitest";
import { cutTranscript, TRANSCRIPT_LIMITS, type ChatMessage } from "../../worker/domain/comagic-chat";
import { classifySession, type CoMagicSession } from "../../worker/domain/comagic-session";
import { buildLeadComment, buildLeadTitle } from "../../worker/domain/lead-comment";
import { leadEventSchema, type LeadEvent } from "../../worker/domain/lead-event";
import { newLeadFields } from "../../worker/domain/lead-plan";
import { crmTexts } from "../../worker/i18n/crm-texts";

/*
 * Issue #22 §2: what a manager reads of a chat or a CoMagic request in Bitrix24 — title, source, and the one
 * comment that carries who said what (get.chat_messages_report, RD/data_api__report__get_chat_messages_report.txt
 * l.58-79) or the request's text, form and page (…get_offline_messages_report.txt l.33-53).
 */

const rules = { defaultRegion: "RU" as const, minLostCallSeconds: 10, receivedAt: new Date("2026-11-24T10:00:00Z") };
const en = crmTexts("en");
const ru = crmTexts("ru");

const said = (source: string, text: string, at = "2026-11-24 10:01:00", employee: string | null = null): ChatMessage => ({ at, source, text, employee, file: null });

function chatEvent(channelType: string | null, messages: ChatMessage[] | null, overrides: Partial<Extract<CoMagicSession, { kind: "chat" }>> = {}): LeadEvent {
  const session: CoMagicSession = {
    kind: "chat",
    id: "77",
    name: null,
    phone: "+79123456789",
    email: null,
    ...EMPTY_SESSION,
    employee: "Ivan Petrov",
    employeeId: "25",
    chat: { channelType, channelName: null, status: "succeed", initiator: "visitor", isGroupChat: false, pageUrl: null, messages },
    ...overrides,
  };
  const result = classifySession(session, rules);
  if (result.status !== "accepted") throw new Error(`not accepted: ${result.reason}`);
  return result.event;
}

function requestEvent(formName: string | null, overrides: Partial<Extract<CoMagicSession, { kind: "request" }>> = {}): LeadEvent {
  const result = classifySession(
    {
      kind: "request",
      id: "5",
      name: "Anna",
      phone: "+79123456789",
      email: "anna@example.ru",
      ...EMPTY_SESSION,
      request: { formName, formType: "Пользовательская", text: "Call me after 6 pm", pageUrl: "https://shop.example.ru/sofa", comment: "about delivery", tech: null },
      ...overrides,
    },
    rules,
  );
  if (result.status !== "accepted") throw new Error(`not accepted: ${result.reason}`);
  return result.event;
}

describe("a chat's title and source", () => {
  it("a WhatsApp chat is titled with its channel and the number, in English and in Russian, source OTHER", () => {
    const event = chatEvent("whatsapp", [said("chat_channel", "Hello")]);
    expect(buildLeadTitle(event, en)).toBe("CoMagic chat (WhatsApp): +79123456789");
    expect(buildLeadTitle(event, ru)).toBe("Чат CoMagic (WhatsApp): +79123456789");
    expect(newLeadFields(event).SOURCE_ID).toBe("OTHER");
  });

  it("a site chat is a website contact (WEB), named after what the visitor typed", () => {
    const event = chatEvent("comagic", [said("visitor", "Hi")], { phone: null, email: "anna@example.ru" });
    expect(buildLeadTitle(event, en)).toBe("CoMagic chat (website): anna@example.ru");
    expect(buildLeadTitle(event, ru)).toBe("Чат CoMagic (сайт): anna@example.ru");
    expect(newLeadFields(event).SOURCE_ID).toBe("WEB");
  });

  it("an email-channel chat is an EMAIL source; an unknown channel is shown as CoMagic names it", () => {
    expect(newLeadFields(chatEvent("email", null)).SOURCE_ID).toBe("EMAIL");
    expect(buildLeadTitle(chatEvent("new_messenger", null), en)).toBe("CoMagic chat (new_messenger): +79123456789");
  });

  it("the legacy chat_session body keeps its old title and source", () => {
    const event = callEvent({ kind: "chat", key: "chat-9", name: "Anna", call: null });
    expect(buildLeadTitle(event, en)).toBe("CoMagic chat: Anna");
    expect(newLeadFields(event).SOURCE_ID).toBe("WEB");
  });
});

describe("a chat's comment: who said what, when", () => {
  it("shows each message with its time, the date once, the client and the operator by name", () => {
    const event = chatEvent("whatsapp", [
      said("chat_channel", "Is the sofa in stock?", "2026-11-24 10:01:12"),
      said("operator", "Yes, in grey and blue.", "2026-11-24 10:02:40", "Ivan Petrov"),
      said("system", "Chat closed by timeout", "2026-11-24 10:30:00"),
      said("chat_channel", "Blue, please", "2026-11-25 09:00:00"),
    ]);
    const comment = buildLeadComment(event, en);
    expect(comment).toContain("Channel: WhatsApp");
    expect(comment).toContain(
      ["Messages:", "[2026-11-24 10:01] Client: Is the sofa in stock?", "[10:02] Operator Ivan Petrov: Yes, in grey and blue.", "[2026-11-25 09:00] Client: Blue, please"].join("\n"),
    );
    expect(comment).not.toContain("closed by timeout");
  });

  it("is written in Russian when CRM_LANGUAGE is ru", () => {
    const comment = buildLeadComment(chatEvent("telegram", [said("visitor", "Привет"), said("chatbot", "Здравствуйте!")]), ru);
    expect(comment).toContain("Канал: Telegram");
    expect(comment).toContain("[2026-11-24 10:01] Клиент: Привет");
    expect(comment).toContain("[10:01] Бот: Здравствуйте!");
  });

  it("links a file the client sent", () => {
    const file: ChatMessage = { at: "2026-11-24 10:05:00", source: "visitor", text: "", employee: null, file: { name: "plan.pdf", url: "https://files.example/plan.pdf" } };
    expect(buildLeadComment(chatEvent("comagic", [said("visitor", "See the plan"), file]), en)).toContain("[10:05] Client: (file plan.pdf: https://files.example/plan.pdf)");
  });

  it("marks a missed chat and says when the messages were not read", () => {
    const event = chatEvent("whatsapp", null);
    const comment = buildLeadComment({ ...event, chat: event.chat ? { ...event.chat, status: "lost" } : null }, en);
    expect(comment).toContain("Missed chat: nobody answered");
    expect(comment).toContain("Messages: not read from CoMagic");
  });

  it("cuts a long chat after 50 messages with a note of how many more are in CoMagic, and still fits a queue message", () => {
    const messages = Array.from({ length: 80 }, (_, i) => said(i % 2 ? "operator" : "visitor", `message ${i}`));
    const event = chatEvent("whatsapp", messages);
    expect(event.chat?.messages).toHaveLength(TRANSCRIPT_LIMITS.messages);
    expect(event.chat?.omitted).toBe(30);
    expect(buildLeadComment(event, en)).toContain("… 30 more messages in CoMagic (chat 77)");
    expect(buildLeadComment(event, ru)).toContain("… ещё сообщений в CoMagic: 30 (чат 77)");
    expect(leadEventSchema.safeParse(event).success).toBe(true);
  });

  it("cuts a chat of long messages at 6,000 characters, each message at 1,000", () => {
    const { messages, omitted } = cutTranscript(Array.from({ length: 10 }, () => said("visitor", "y".repeat(1500))));
    expect(messages).toHaveLength(6);
    expect(messages.every((m) => m.text.length === 1000)).toBe(true);
    expect(omitted).toBe(4);
  });
});

describe("a CoMagic request's title, source and comment", () => {
  it("is titled by its form name, in English and in Russian, source WEBFORM with the page as its description", () => {
    const event = requestEvent("Callback");
    expect(buildLeadTitle(event, en)).toBe("CoMagic request: Callback");
    expect(buildLeadTitle(event, ru)).toBe("Заявка CoMagic: Callback");
    expect(newLeadFields(event)).toMatchObject({ SOURCE_ID: "WEBFORM", SOURCE_DESCRIPTION: "https://shop.example.ru/sofa", NAME: "Anna" });
  });

  it("without a form name, is titled by who sent it", () => {
    expect(buildLeadTitle(requestEvent(null), en)).toBe("CoMagic request: Anna");
  });

  it("carries its text, comment, form and page in the comment", () => {
    const comment = buildLeadComment(requestEvent("Callback"), en);
    expect(comment).toContain("CoMagic request ID: 5");
    expect(comment).toContain("Form: Callback (Form type: Пользовательская)");
    expect(comment).toContain("Text: Call me after 6 pm");
    expect(comment).toContain("Comment: about delivery");
    expect(comment).toContain("Page: https://shop.example.ru/sofa");
    expect(buildLeadComment(requestEvent("Обратный звонок"), ru)).toContain("Текст: Call me after 6 pm");
  });
});

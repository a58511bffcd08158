import type { ChatHistoryItem } from "node-llama-cpp";
import { chatMessagesIssue } from "../../schema/job.ts";
import { JobFailure } from "../failure.ts";
import { plainText, type TaskDefinition } from "./types.ts";

/** A reference document longer than the context is cut to its head and tail; the conversation itself is never cut. */
export const chat: TaskDefinition = {
  longDocument: "truncate",
  build: ({ job, document }) => {
    const messages = job.params.messages;
    if (!messages?.length) throw new JobFailure("invalid_params", "params.messages: chat needs at least one message");
    // A message published by another NATS client skipped the producer's check: the same rule, as a job failure.
    const issue = chatMessagesIssue(messages);
    const last = messages[messages.length - 1];
    if (issue || !last) throw new JobFailure("invalid_params", `params.messages: ${issue}`);
    // The reference document goes first: the head every conversation about it shares (prefix reuse).
    const reference = document ? `Reference document:\n<document>\n${document}\n</document>` : undefined;
    const system = [...(reference ? [reference] : []), ...messages.filter((m) => m.role === "system").map((m) => m.content)];
    const history: ChatHistoryItem[] = messages
      .slice(0, -1)
      .filter((m) => m.role !== "system")
      .map((m) => (m.role === "user" ? { type: "user", text: m.content } : { type: "model", response: [m.content] }));
    const systemPrompt = system.join("\n\n") || "You are a helpful assistant.";
    return {
      systemPrompt,
      history,
      prompt: last.content,
      // The system text (reference document first) is what conversations about one document share, OpenAI
      // clients included: a long system prompt asked many questions is evaluated once.
      shared: { systemPrompt, prompt: "" },
      read: plainText,
    };
  },
};

import { z } from "zod";
import { BatchOptions } from "./batch.ts";
import { JobParams } from "./job.ts";
import { RequestedModel } from "./model.ts";
import { TASKS } from "./subjects.ts";

/** POST /v1/documents as JSON (a file goes as multipart instead: `file`, optional `title`). */
export const CreateDocumentRequest = z.object({
  text: z.string().min(1),
  title: z.string().max(1024).optional(),
});
export type CreateDocumentRequest = z.infer<typeof CreateDocumentRequest>;

/** GET /v1/documents/:id: metadata; `text` only with ?include=text. */
export const DocumentView = z.object({
  id: z.string(),
  object: z.literal("document"),
  title: z.string().nullable(),
  filename: z.string().nullable(),
  mime: z.string().nullable(),
  /** UTF-8 bytes of the text. */
  bytes: z.number(),
  /** Hex SHA-256 of the text, as jobs on it carry in input.sha256. */
  sha256: z.string(),
  createdAt: z.string(),
  text: z.string().optional(),
});
export type DocumentView = z.infer<typeof DocumentView>;

export const DocumentList = z.object({ data: z.array(DocumentView), nextCursor: z.string().nullable(), hasMore: z.boolean() });
export type DocumentList = z.infer<typeof DocumentList>;

/** GET /v1/documents query: newest first; the cursor is the last id seen. */
export const ListDocumentsQuery = z.object({
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ListDocumentsQuery = z.infer<typeof ListDocumentsQuery>;

/** One task of POST /v1/documents/:id/jobs: the request's params apply unless the task overrides them. */
export const DocumentTask = z.object({
  task: z.enum(TASKS),
  /** The model for this task instead of the request's: a small model's classify beside a large one's extract. */
  model: RequestedModel.optional(),
  params: JobParams.optional(),
  customId: z.string().max(256).optional(),
});

/**
 * POST /v1/documents/:id/jobs: many tasks on one document, as one batch. The batch options without `task`
 * (each task names its own; the batch records the first): lane (default batch), model, params every task starts
 * from, webhookUrl.
 */
export const CreateDocumentJobsRequest = BatchOptions.omit({ task: true }).extend({
  tasks: z.array(DocumentTask).min(1),
});
export type CreateDocumentJobsRequest = z.infer<typeof CreateDocumentJobsRequest>;

/** DELETE /v1/documents/:id. */
export const DocumentDeleted = z.object({ id: z.string(), object: z.literal("document"), deleted: z.literal(true) });
export type DocumentDeleted = z.infer<typeof DocumentDeleted>;

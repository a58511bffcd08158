import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes → text, refusing invalid UTF-8 (400 invalid_utf8) rather than letting U+FFFD into documents. */
export function decodeUtf8(bytes: Uint8Array, where = "request body"): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ApiError("invalid_utf8", `${where} is not valid UTF-8; send text encoded as UTF-8`);
  }
}

/** The body as JSON: 400 invalid_utf8 on bytes that are not UTF-8, 400 invalid_json on bad syntax. */
export async function readJson(c: Context, hint = ""): Promise<unknown> {
  const text = decodeUtf8(new Uint8Array(await c.req.arrayBuffer()));
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", `request body is not valid JSON${hint}`);
  }
}

/**
 * The body as multipart/form-data (hono's parseBody; `all` keeps repeated fields): 400 invalid_multipart
 * when it cannot be parsed. The bytes are read first, outside the catch, so a client that went away mid-upload
 * is not reported as malformed (app.ts answers that).
 */
export async function readForm(c: Context, all = false): Promise<Record<string, string | File | (string | File)[]>> {
  await c.req.arrayBuffer();
  try {
    return await c.req.parseBody({ all });
  } catch {
    throw new ApiError(
      "invalid_multipart",
      "the body is not valid multipart/form-data: check the boundary in Content-Type and the parts' headers (no CR or LF in a file name)",
    );
  }
}

/** Parses a JSON body with a zod schema; the error names the first offending field. */
export async function parseJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  return parseValue(schema, await readJson(c));
}

export function parseValue<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join(".") || undefined;
  throw new ApiError("validation_failed", field ? `${field}: ${issue?.message}` : (issue?.message ?? "invalid"), field);
}

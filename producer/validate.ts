import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.ts";

/** Parses a JSON body with a zod schema; the error names the first offending field. */
export async function parseJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError("invalid_json", "request body is not valid JSON");
  }
  return parseValue(schema, body);
}

export function parseValue<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join(".") || undefined;
  throw new ApiError("validation_failed", field ? `${field}: ${issue?.message}` : (issue?.message ?? "invalid"), field);
}

import type { Task } from "../../schema/subjects.ts";
import { ask } from "./ask.ts";
import { chat } from "./chat.ts";
import { classify } from "./classify.ts";
import { extract } from "./extract.ts";
import { summarize } from "./summarize.ts";
import type { TaskDefinition } from "./types.ts";

export const TASK_DEFINITIONS: Record<Task, TaskDefinition> = { summarize, extract, classify, ask, chat };
export { PRESETS, type PresetName } from "./presets.ts";
export type { TaskContext, TaskDefinition, TaskPlan } from "./types.ts";

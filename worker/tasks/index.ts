import type { Task } from "../../schema/subjects.ts";
import { ask } from "./ask.ts";
import { chat } from "./chat.ts";
import { classify } from "./classify.ts";
import { extract } from "./extract.ts";
import { summarize } from "./summarize.ts";
import type { TaskBuilder } from "./types.ts";

export const TASK_BUILDERS: Record<Task, TaskBuilder> = { summarize, extract, classify, ask, chat };
export type { TaskContext, TaskPlan } from "./types.ts";

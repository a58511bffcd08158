CREATE TABLE `usage_daily` (
	`key` text NOT NULL,
	`day` text NOT NULL,
	`succeeded` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`documents` integer DEFAULT 0 NOT NULL,
	`prompt_tokens` integer DEFAULT 0 NOT NULL,
	`completion_tokens` integer DEFAULT 0 NOT NULL,
	`cached_tokens` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`key`, `day`)
);
--> statement-breakpoint
CREATE INDEX `usage_daily_day_idx` ON `usage_daily` (`day`);--> statement-breakpoint
ALTER TABLE `api_keys` ADD `quota_tokens_per_day` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `quota_queued_jobs` integer;--> statement-breakpoint
ALTER TABLE `batches` ADD `deadline` text;--> statement-breakpoint
ALTER TABLE `batches` ADD `expires_at` text;--> statement-breakpoint
ALTER TABLE `batches` ADD `expired_at` text;--> statement-breakpoint
ALTER TABLE `batches` ADD `retries` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `job_events` ADD `code` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `queued_at` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `estimated_prompt_tokens` integer;--> statement-breakpoint
ALTER TABLE `jobs` ADD `max_tokens` integer;--> statement-breakpoint
ALTER TABLE `jobs` ADD `first_attempt` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
CREATE INDEX `jobs_owner_state_idx` ON `jobs` (`owner`,`state`);--> statement-breakpoint
CREATE INDEX `jobs_queue_idx` ON `jobs` (`state`,`lane`,`queued_at`,`batch_index`,`id`);--> statement-breakpoint
CREATE INDEX `jobs_deadline_idx` ON `jobs` (`state`,`deadline`);--> statement-breakpoint
-- Backfill (hand-written): rows from before this migration get their place in line, their estimates
-- (DOCKET_MAX_TOKENS' default 512 where a job named no maxTokens), OpenAI batches their 24 h window,
-- and the usage table the recorded results so far.
UPDATE `jobs` SET `queued_at` = `submitted_at`,
	`estimated_prompt_tokens` = coalesce(length(CAST(json_extract(`input`, '$.text') AS BLOB)), 0) / 4,
	`max_tokens` = coalesce(json_extract(`params`, '$.maxTokens'), 512);--> statement-breakpoint
UPDATE `batches` SET `expires_at` = strftime('%Y-%m-%dT%H:%M:%fZ', `created_at`, '+1 day')
	WHERE `id` IN (SELECT `id` FROM `openai_batches`);--> statement-breakpoint
INSERT INTO `usage_daily` (`key`, `day`, `succeeded`, `failed`, `documents`, `prompt_tokens`, `completion_tokens`, `cached_tokens`)
	SELECT coalesce(`owner`, ''), substr(`finished_at`, 1, 10),
		sum(`state` = 'succeeded'), sum(`state` = 'failed'), sum(`task` <> 'chat'),
		coalesce(sum(json_extract(`result`, '$.usage.promptTokens')), 0),
		coalesce(sum(json_extract(`result`, '$.usage.completionTokens')), 0),
		coalesce(sum(json_extract(`result`, '$.usage.cachedTokens')), 0)
	FROM `jobs` WHERE `state` IN ('succeeded', 'failed') AND `finished_at` IS NOT NULL
	GROUP BY coalesce(`owner`, ''), substr(`finished_at`, 1, 10);

CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`event_key` text NOT NULL,
	`type` text NOT NULL,
	`job_id` text,
	`batch_id` text,
	`url` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`last_status_code` integer,
	`last_error` text,
	`created_at` text NOT NULL,
	`delivered_at` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_deliveries_event_key_unique` ON `webhook_deliveries` (`event_key`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_due_idx` ON `webhook_deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_job_idx` ON `webhook_deliveries` (`job_id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_batch_idx` ON `webhook_deliveries` (`batch_id`);--> statement-breakpoint
ALTER TABLE `jobs` ADD `webhook_url` text;
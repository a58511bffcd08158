CREATE TABLE `batches` (
	`id` text PRIMARY KEY NOT NULL,
	`state` text NOT NULL,
	`lane` text NOT NULL,
	`task` text NOT NULL,
	`params` text NOT NULL,
	`idempotency_key` text,
	`webhook_url` text,
	`total` integer NOT NULL,
	`queued` integer DEFAULT 0 NOT NULL,
	`running` integer DEFAULT 0 NOT NULL,
	`succeeded` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`cancelled` integer DEFAULT 0 NOT NULL,
	`cancel_requested_at` text,
	`error` text,
	`created_at` text NOT NULL,
	`in_progress_at` text,
	`finished_at` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `batches_idempotency_key_unique` ON `batches` (`idempotency_key`);--> statement-breakpoint
ALTER TABLE `jobs` ADD `batch_index` integer;--> statement-breakpoint
CREATE INDEX `jobs_batch_order_idx` ON `jobs` (`batch_id`,`batch_index`);--> statement-breakpoint
CREATE INDEX `jobs_submitted_idx` ON `jobs` (`submitted_at`);
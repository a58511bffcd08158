CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` text NOT NULL,
	`revoked_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash_unique` ON `api_keys` (`hash`);--> statement-breakpoint
ALTER TABLE `batches` ADD `owner` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `owner` text;--> statement-breakpoint
CREATE INDEX `jobs_owner_idx` ON `jobs` (`owner`,`id`);
-- 0004_ingest.sql - what POST /v1/events needs besides the events table:
-- the idempotency keys producers send with their events, and the network
-- columns of an event's device that the events table did not copy yet.

-- A producer's own id for an event ("id" in POST /v1/events), so that a
-- retried request does not store the event twice.  The ingestion claims a
-- key with INSERT ... ON CONFLICT DO NOTHING in the statement that inserts
-- the event: a concurrent request with the same key waits for the first
-- one's transaction, then finds the key taken.  event_id and occurred_at
-- name the stored event (its primary key is workspace, time, id).
create table event_keys (
	workspace_id uuid not null references workspaces on delete cascade,
	key text not null check (length(key) between 1 and 128),
	event_id bigint not null,
	occurred_at timestamptz not null,
	created_at timestamptz not null default now(),
	primary key (workspace_id, key)
);
-- Retention removes the keys of the events it removes.
create index event_keys_occurred_idx on event_keys (occurred_at);

-- Copied from the device like the other geo columns, for filters without
-- a join.  "if not exists": another migration may have added them first.
alter table events add column if not exists isp text;
alter table events add column if not exists asn bigint
	check (asn >= 0);

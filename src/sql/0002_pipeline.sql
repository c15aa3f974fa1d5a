-- 0002_pipeline.sql - the scan event pipeline: the actions producers
-- record, one NOTIFY per inserting statement, and the durable cursor that
-- linkpulsed's leader advances in the same transaction as everything its
-- consumers write.
--
-- pipeline_cursor is global (the pipeline reads every workspace's events),
-- so it has no workspace_id: under Citus it is a reference table.

-- Actions: the Linkbreakers ones (scan, click) and the ones linkpulse
-- tracks besides.
alter table events drop constraint events_action_check;
alter table events add constraint events_action_check
	check (action in ('ACTION_UNSPECIFIED', 'ACTION_SCAN', 'ACTION_CLICK',
			  'ACTION_RESCAN', 'ACTION_WORKFLOW_INTERACTION',
			  'ACTION_FORM_SUBMISSION', 'ACTION_CONVERSION'));

-- NOTIFY is a wake-up, never the data: one per statement, not per row
-- (PostgreSQL also folds identical notifications of one transaction).
create function lp_notify_events() returns trigger
language plpgsql
as $$
begin
	perform pg_notify('linkpulse_events', '');
	return null;
end;
$$;

create trigger events_notify
	after insert on events
	for each statement execute function lp_notify_events();

-- The cursor.  Events between two snapshots are those visible in cur and
-- not in prev, whatever order their ids were taken in, so a transaction
-- that commits late is read in the batch after it commits, never skipped.
-- A snapshot pair with more events than a batch holds is walked in
-- (xid, id) order: pos is the last position done.  owner and lease_until
-- make one linkpulsed the leader at a time.
create table pipeline_cursor (
	name text primary key,
	prev_snapshot pg_snapshot not null,
	cur_snapshot pg_snapshot null,
	pos_xid xid8 null,
	pos_id bigint null,
	owner text null,
	lease_until timestamptz null,
	owner_since timestamptz null,
	batches bigint not null default 0,
	events bigint not null default 0,
	updated_at timestamptz not null default now()
);

-- '1:1:' sees no transaction, so every event already in the table is
-- still to be read.
insert into pipeline_cursor (name, prev_snapshot) values ('main', '1:1:');

-- The events of one batch.  Inlined by the planner (a single SELECT), so
-- callers' filters and aggregates run over an index range scan of
-- events_xid_idx in each partition.
create function lp_batch_events(prev pg_snapshot, cur pg_snapshot,
				from_xid xid8, from_id bigint,
				to_xid xid8, to_id bigint)
returns setof events
language sql
stable
as $$
	select *
	from events e
	-- One row comparison as the lower bound, so the index scan starts at
	-- max(from, xmin(prev)) instead of at the start of the index (ids
	-- start at 1, so -1 takes every id of the first xid).
	where (e.xid, e.id) > (greatest(from_xid, pg_snapshot_xmin(prev)),
			       case when from_xid >= pg_snapshot_xmin(prev)
				    then from_id else -1 end)
	  and e.xid < pg_snapshot_xmax(cur)
	  and (e.xid, e.id) <= (to_xid, to_id)
	  and pg_visible_in_snapshot(e.xid, cur)
	  and not pg_visible_in_snapshot(e.xid, prev)
$$;

-- Takes, keeps or gives up leadership.  Returns whether p_owner leads
-- now and whether it just became leader.  A lease still held by another
-- owner is left alone; an expired one is taken over.  Never waits: while
-- a batch holds the cursor row, its owner leads (the batch's advance
-- renews the lease) and nobody else may take over.
create function lp_pipeline_lease(p_owner text, p_ttl_ms int,
				  p_release boolean default false)
returns table (leader boolean, became boolean)
language plpgsql
as $$
declare
	c pipeline_cursor;
begin
	select * into c from pipeline_cursor
	where name = 'main'
	for update skip locked;
	if not found then
		-- A batch is running: the committed owner is the leader.
		return query select coalesce(p.owner = p_owner, false), false
		from pipeline_cursor p where p.name = 'main';
		return;
	end if;
	if p_release then
		update pipeline_cursor set owner = null, lease_until = null
		where name = 'main' and owner = p_owner;
		return query select false, false;
		return;
	end if;
	if c.owner = p_owner or c.owner is null
	   or c.lease_until < clock_timestamp() then
		update pipeline_cursor
		set owner = p_owner,
		    lease_until = clock_timestamp() + p_ttl_ms * interval '1 ms',
		    owner_since = case when c.owner is distinct from p_owner
				       then now() else c.owner_since end
		where name = 'main';
		return query select true, c.owner is distinct from p_owner;
	else
		return query select false, false;
	end if;
end;
$$;

-- Opens the next batch for p_owner, who must hold the lease; the cursor
-- row stays locked until the caller's transaction ends, which fences off
-- a late former leader.  Returns no row when p_owner is not the leader.
create function lp_pipeline_batch(p_owner text, p_limit int)
returns table (prev text, cur text, from_xid text, from_id text,
	       to_xid text, to_id text, n int, complete boolean,
	       newest_received timestamptz)
language plpgsql
as $$
declare
	c pipeline_cursor;
	v_cur pg_snapshot;
	v_from_xid xid8;
	v_from_id bigint;
	v_to_xid xid8;
	v_to_id bigint;
	v_n int;
	v_newest timestamptz;
begin
	select * into c from pipeline_cursor
	where name = 'main' and owner = p_owner
	  and lease_until > clock_timestamp()
	for update;
	if not found then
		return;
	end if;
	v_cur := coalesce(c.cur_snapshot, pg_current_snapshot());
	v_from_xid := coalesce(c.pos_xid, '0'::xid8);
	v_from_id := coalesce(c.pos_id, 0);

	with b as (
		select e.xid, e.id, e.received_at
		from lp_batch_events(c.prev_snapshot, v_cur, v_from_xid,
				     v_from_id, '18446744073709551615'::xid8,
				     9223372036854775807) e
		order by e.xid, e.id
		limit p_limit
	), last as (
		select b.xid, b.id from b order by b.xid desc, b.id desc limit 1
	)
	select count(*)::int, max(b.received_at),
	       (select last.xid from last), (select last.id from last)
	into v_n, v_newest, v_to_xid, v_to_id
	from b;

	return query select c.prev_snapshot::text, v_cur::text,
		v_from_xid::text, v_from_id::text,
		coalesce(v_to_xid, v_from_xid)::text,
		coalesce(v_to_id, v_from_id)::text,
		v_n, v_n < p_limit, v_newest;
end;
$$;

-- Moves the cursor past a batch, in the batch's transaction: on to the
-- next snapshot when the pair is done, else to the batch's last position.
create function lp_pipeline_advance(p_owner text, p_cur pg_snapshot,
				    p_to_xid xid8, p_to_id bigint,
				    p_complete boolean, p_n int,
				    p_lease_ms int)
returns boolean
language sql
as $$
	update pipeline_cursor
	set prev_snapshot = case when p_complete then p_cur
				 else prev_snapshot end,
	    cur_snapshot = case when p_complete then null else p_cur end,
	    pos_xid = case when p_complete then null else p_to_xid end,
	    pos_id = case when p_complete then null else p_to_id end,
	    lease_until = clock_timestamp() + p_lease_ms * interval '1 ms',
	    batches = batches + 1,
	    events = events + p_n,
	    updated_at = now()
	where name = 'main' and owner = p_owner
	returning true
$$;
